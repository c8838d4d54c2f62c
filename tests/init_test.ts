/** Parameter init: GPT-2's seeded normal init with scaled residual projections. */
import { assert, assertEquals } from "./_assert.ts";
import { makeConfig } from "../src/model/config.ts";
import { paramLayout, view } from "../src/model/params.ts";
import { initParams } from "../src/model/init.ts";

Deno.test("init: seeded N(0, 0.02), scaled residual projections, LN 1, biases and pad rows 0", () => {
  const config = makeConfig({
    numLayers: 2,
    numHeads: 2,
    channels: 64,
    vocabSize: 1000,
    bias: true,
  });
  const layout = paramLayout(config);
  const params = initParams(layout, 42);
  assertEquals(initParams(layout, 42), params);
  assert(initParams(layout, 43).some((x, i) => x !== params[i]), "the seed matters");
  const std = (a: Float32Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0) / a.length);
  const close = (a: number, b: number) => Math.abs(a - b) < 0.05 * b;
  const wte = view(params, layout.wte);
  assert(close(std(wte.subarray(0, 1000 * 64)), 0.02), `wte std ${std(wte)}`);
  assert(wte.subarray(1000 * 64).every((x) => x === 0), "padded vocab rows are zero");
  assert(close(std(view(params, layout.layers[1].fcw)), 0.02));
  assert(close(std(view(params, layout.layers[0].fcprojw)), 0.01), "0.02 / sqrt(2 * 2)");
  assert(close(std(view(params, layout.layers[0].attprojw)), 0.01));
  assert(view(params, layout.lnfw).every((x) => x === 1));
  assert(view(params, layout.layers[0].fcb!).every((x) => x === 0));
});

import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { makeConfig, padVocab, presetConfig } from "../src/model/config.ts";
import { PARAM_ALIGN_FLOATS, paramLayout, view } from "../src/model/params.ts";
import { initParams } from "../src/model/init.ts";

Deno.test("config: presets have GPT-2's sizes and the seed recipe's defaults", () => {
  const c = presetConfig("gpt2");
  assertEquals([c.numLayers, c.numHeads, c.channels, c.maxSeqLen], [12, 12, 768, 1024]);
  assertEquals([c.vocabSize, c.paddedVocabSize], [50257, 50304]);
  assertEquals([c.bias, c.gelu, c.tiedEmbeddings, c.layerNormEps], [false, "erf", true, 1e-5]);
  const xl = presetConfig("gpt2-xl");
  assertEquals([xl.numLayers, xl.numHeads, xl.channels], [48, 25, 1600]);
  assertEquals(presetConfig("tiny", { vocabSize: 101 }).paddedVocabSize, 128);
  assertEquals(padVocab(50257, 64), 50304);
});

Deno.test("config: invalid values are rejected naming the field", () => {
  assertThrows(() => presetConfig("gpt3"), Error, 'unknown model preset "gpt3"');
  assertThrows(() => makeConfig({ numLayers: 2, numHeads: 3, channels: 32 }), Error, "divisible");
  assertThrows(() => makeConfig({ numLayers: 0, numHeads: 2, channels: 32 }), Error, "numLayers");
  assertThrows(
    () => makeConfig({ numLayers: 1, numHeads: 1, channels: 8, paddedVocabSize: 10 }),
    Error,
    "paddedVocabSize",
  );
  assertThrows(
    // deno-lint-ignore no-explicit-any
    () => makeConfig({ numLayers: 1, numHeads: 1, channels: 8, gelu: "relu" as any }),
    Error,
    "gelu",
  );
  assertThrows(
    () => makeConfig({ numLayers: 1, numHeads: 1, channels: 8, tiedEmbeddings: false }),
    Error,
    "tied",
  );
});

Deno.test("params: GPT-2 124M with biases and Vp=50304 has 124,475,904 parameters", () => {
  const layout = paramLayout(presetConfig("gpt2", { bias: true }));
  assertEquals(layout.numParameters, 124_475_904);
  // Bias-free: minus 12 layers of ln_1, c_attn (3C), attn.c_proj, ln_2, c_fc (4C), mlp.c_proj
  // biases (11C) and ln_f.bias.
  const noBias = paramLayout(presetConfig("gpt2"));
  assertEquals(noBias.numParameters, 124_475_904 - 12 * 11 * 768 - 768);
});

Deno.test("params: aligned, disjoint, decayed 2-D tensors first, names resolvable", () => {
  for (const bias of [true, false]) {
    const layout = paramLayout(makeConfig({ numLayers: 2, numHeads: 2, channels: 24, bias }));
    let end = 0;
    for (const t of layout.tensors) {
      assertEquals(t.offset % PARAM_ALIGN_FLOATS, 0, t.name);
      assert(t.offset >= end, `${t.name} overlaps its predecessor`);
      end = t.offset + t.size;
      assertEquals(t.decay, t.shape.length >= 2, t.name);
      assertEquals(t.decay, t.offset < layout.decayFloats, `${t.name} in the wrong range`);
      assertEquals(layout.get(t.name), t);
    }
    assert(end <= layout.totalFloats);
    assertEquals(layout.get("h.1.attn.c_attn.weight").shape, [72, 24]);
    assertEquals(layout.layers[1].fcprojw.shape, [24, 96]);
    assertEquals(layout.lnfb === null, !bias);
    assertThrows(() => layout.get("lm_head.weight"), Error, "lm_head.weight");
  }
});

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

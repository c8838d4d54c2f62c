/** The flat parameter layout: sizes, alignment, decay ranges and names. */
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { makeConfig, presetConfig } from "../src/model/config.ts";
import { PARAM_ALIGN_FLOATS, paramLayout } from "../src/model/params.ts";

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

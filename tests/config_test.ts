/** Model configs: GPT-2's presets and their checks. */
import { assertEquals, assertThrows } from "./_assert.ts";
import { makeConfig, padVocab, presetConfig } from "../src/model/config.ts";

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

import assert from "node:assert/strict";
import { join } from "node:path";
import { makeConfig } from "../src/model/config.ts";
import { paramLayout } from "../src/model/params.ts";
import { initParams } from "../src/model/init.ts";
import { isLlmcModelFile, llmcFileBytes, loadLlmc, saveLlmc } from "../src/model/llmc.ts";

const small = (bias: boolean, gelu: "tanh" | "erf") =>
  makeConfig({ numLayers: 2, numHeads: 2, channels: 16, maxSeqLen: 8, vocabSize: 50, bias, gelu });

for (const [bias, gelu] of [[true, "tanh"], [false, "erf"]] as const) {
  Deno.test(`llmc: round trip of a ${bias ? "biased" : "bias-free"} ${gelu} model is bit-identical`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const config = small(bias, gelu);
      const layout = paramLayout(config);
      const params = initParams(layout, 5);
      // Non-trivial biases and gains, so a swapped group would show.
      for (const t of layout.tensors) {
        if (t.shape.length === 1) {
          for (let i = 0; i < t.size; i++) params[t.offset + i] = Math.sin(t.offset + i);
        }
      }
      const path = join(dir, "model.bin");
      await saveLlmc(path, config, params);
      assert.ok(await isLlmcModelFile(path));
      assert.equal((await Deno.stat(path)).size, llmcFileBytes(config));
      const back = await loadLlmc(path);
      assert.deepEqual(back.config, config);
      assert.deepEqual(back.params, params);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("llmc: the file is llm.c's layout (header words, groups by kind across layers)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = small(true, "tanh");
    const layout = paramLayout(config);
    const params = initParams(layout, 9);
    const path = join(dir, "model.bin");
    await saveLlmc(path, config, params);
    const bytes = await Deno.readFile(path);
    const header = new Int32Array(bytes.buffer, 0, 256);
    const { maxSeqLen: T, vocabSize: V, numLayers: L, numHeads: NH, channels: C } = config;
    assert.deepEqual([...header.subarray(0, 10)], [20240326, 3, T, V, L, NH, C, 128, 0, 0]);
    // Walk llm.c's order independently of the writer: wte, wpe, then ln1w for all layers, ...
    const floats = new Float32Array(bytes.buffer, 1024);
    const Vp = config.paddedVocabSize;
    const qkvwAt = Vp * C + T * C + 2 * L * C; // after wte, wpe, ln1w (L,C), ln1b (L,C)
    const layer1 = floats.subarray(qkvwAt + 3 * C * C, qkvwAt + 6 * C * C);
    assert.deepEqual(
      layer1,
      params.subarray(layout.layers[1].qkvw.offset, layout.layers[1].qkvw.offset + 3 * C * C),
    );
    const lnfb = floats.subarray(floats.length - C);
    assert.deepEqual(lnfb, params.subarray(layout.lnfb!.offset, layout.lnfb!.offset + C));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("llmc: bad files are rejected naming the file and the reason", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = small(false, "erf");
    const path = join(dir, "model.bin");
    await saveLlmc(path, config, initParams(paramLayout(config), 1));
    const good = await Deno.readFile(path);
    const cases: [string, (b: Uint8Array) => Uint8Array, RegExp][] = [
      ["short", (b) => b.subarray(0, 100), /shorter than llm.c's 1024-byte header/],
      ["magic", (b) => withWord(b, 0, 20240520), /not an llm.c model file \(magic 20240520/],
      ["bf16", (b) => withWord(b, 1, 5), /version 5.*bf16/],
      ["heads", (b) => withWord(b, 5, 3), /header: .*not divisible by numHeads 3/],
      ["truncated", (b) => b.subarray(0, b.length - 4), /needs \d+/],
      ["biases", (b) => withFloatAtEnd(b, 1.5), /bias-free .* non-zero biases/],
    ];
    for (const [name, corrupt, message] of cases) {
      const bad = join(dir, `${name}.bin`);
      await Deno.writeFile(bad, corrupt(good.slice()));
      await assert.rejects(loadLlmc(bad), (e: Error) => {
        assert.ok(e.message.startsWith(bad), e.message);
        assert.match(e.message, message);
        return true;
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function withWord(bytes: Uint8Array, word: number, value: number): Uint8Array {
  new DataView(bytes.buffer).setInt32(word * 4, value, true);
  return bytes;
}

/** ln_f's bias is the last C floats; set one of a bias-free file's zero biases. */
function withFloatAtEnd(bytes: Uint8Array, value: number): Uint8Array {
  new DataView(bytes.buffer).setFloat32(bytes.length - 4, value, true);
  return bytes;
}

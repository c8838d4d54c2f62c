import { assert, assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import { join } from "node:path";
import { type TensorSource, writeSafetensors } from "../src/io/safetensors.ts";
import { makeConfig } from "../src/model/config.ts";
import { configFromHf, loadHf, saveHf } from "../src/model/hf.ts";
import { paramLayout, view } from "../src/model/params.ts";

// A small HF-layout GPT-2 written tensor by tensor, the way transformers saves one.
const HF_CONFIG = {
  n_layer: 2,
  n_head: 2,
  n_embd: 8,
  n_positions: 6,
  vocab_size: 11,
  layer_norm_epsilon: 1e-5,
  activation_function: "gelu_new",
};

function hfTensors(prefix: string): TensorSource[] {
  const C = 8, shapes: [string, number[]][] = [["wte.weight", [11, C]], ["wpe.weight", [6, C]]];
  for (let l = 0; l < 2; l++) {
    shapes.push(
      [`h.${l}.ln_1.weight`, [C]],
      [`h.${l}.ln_1.bias`, [C]],
      [`h.${l}.attn.bias`, [1, 1, 6, 6]],
      [`h.${l}.attn.c_attn.weight`, [C, 3 * C]],
      [`h.${l}.attn.c_attn.bias`, [3 * C]],
      [`h.${l}.attn.c_proj.weight`, [C, C]],
      [`h.${l}.attn.c_proj.bias`, [C]],
      [`h.${l}.ln_2.weight`, [C]],
      [`h.${l}.ln_2.bias`, [C]],
      [`h.${l}.mlp.c_fc.weight`, [C, 4 * C]],
      [`h.${l}.mlp.c_fc.bias`, [4 * C]],
      [`h.${l}.mlp.c_proj.weight`, [4 * C, C]],
      [`h.${l}.mlp.c_proj.bias`, [C]],
    );
  }
  shapes.push(["ln_f.weight", [C]], ["ln_f.bias", [C]]);
  let seed = 1;
  return shapes.map(([name, shape]) => ({
    name: prefix + name,
    dtype: "F32",
    shape,
    data: Float32Array.from(
      { length: shape.reduce((a, b) => a * b, 1) },
      () => (seed = (seed * 48271) % 2147483647) / 2147483647 - 0.5,
    ),
  }));
}

async function writeHfDir(dir: string, tensors: TensorSource[], config: object = HF_CONFIG) {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(config));
  await writeSafetensors(join(dir, "model.safetensors"), tensors);
}

Deno.test("hf: load transposes Conv1D weights, pads vocab, skips mask buffers", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const tensors = hfTensors("transformer.");
    const wte = tensors[0].data as Float32Array;
    tensors.push({ name: "lm_head.weight", dtype: "F32", shape: [11, 8], data: wte });
    await writeHfDir(dir, tensors);
    const { config, layout, params } = await loadHf(dir);
    assertEquals([config.vocabSize, config.paddedVocabSize, config.gelu, config.bias], [
      11,
      128,
      "tanh",
      true,
    ]);
    const wteOurs = view(params, layout.wte);
    assertEquals(wteOurs.subarray(0, 88), wte);
    assert(wteOurs.subarray(88).every((x) => x === 0), "padded vocab rows are zero");
    // c_attn: HF (in=8, out=24) -> ours (out=24, in=8).
    const hf = tensors.find((t) => t.name === "transformer.h.1.attn.c_attn.weight")!
      .data as Float32Array;
    const ours = view(params, layout.get("h.1.attn.c_attn.weight"));
    for (let o = 0; o < 24; o++) {
      for (let i = 0; i < 8; i++) assertEquals(ours[o * 8 + i], hf[i * 24 + o]);
    }
    assertEquals(
      view(params, layout.get("h.0.mlp.c_fc.bias")),
      tensors.find((t) => t.name === "transformer.h.0.mlp.c_fc.bias")!.data as Float32Array,
    );

    // Save and load back: the same flat parameters.
    await saveHf(join(dir, "out"), config, params);
    const again = await loadHf(join(dir, "out"));
    assertEquals(again.config, config);
    assertEquals(again.params, params);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hf: a bias-free model saves zero biases for transformers and loads bias-free", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = makeConfig({
      numLayers: 1,
      numHeads: 2,
      channels: 8,
      vocabSize: 13,
      maxSeqLen: 4,
    });
    const layout = paramLayout(config);
    const params = new Float32Array(layout.totalFloats);
    for (const t of layout.tensors) view(params, t).forEach((_, i, a) => a[i] = i * 0.01 + 1);
    view(params, layout.wte).fill(0, 13 * 8);
    await saveHf(dir, config, params);
    const hfConfig = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
    assertEquals([hfConfig.activation_function, hfConfig.repgpt_bias], ["gelu", false]);
    const loaded = await loadHf(dir);
    assertEquals(loaded.config, config);
    assertEquals(loaded.params, params);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hf: missing tensors, wrong shapes and bad configs are named", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeHfDir(dir, hfTensors("").filter((t) => t.name !== "h.1.ln_2.bias"));
    await assertRejects(() => loadHf(dir), Error, 'missing tensor "h.1.ln_2.bias"');
    await writeHfDir(dir, hfTensors(""), { ...HF_CONFIG, n_embd: 16, n_head: 2 });
    await assertRejects(() => loadHf(dir), Error, 'tensor "wte.weight" has shape [11,8]');
    const untied = hfTensors("");
    untied.push({
      name: "lm_head.weight",
      dtype: "F32",
      shape: [11, 8],
      data: new Float32Array(88),
    });
    await writeHfDir(dir, untied);
    await assertRejects(() => loadHf(dir), Error, "differs from wte");
    await assertRejects(() => loadHf(join(dir, "nope")), Error, "config.json");
    assertThrows(
      () => configFromHf({ ...HF_CONFIG, activation_function: "relu" }, "x/config.json"),
      Error,
      'x/config.json: activation_function "relu"',
    );
    assertThrows(
      () => configFromHf({ ...HF_CONFIG, n_head: 3 }, "x/config.json"),
      Error,
      "x/config.json: model config: channels 8 is not divisible by numHeads 3",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

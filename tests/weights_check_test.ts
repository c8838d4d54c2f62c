/**
 * Every command checks weights when it loads them (issue 9, items 4, 5, 6, 9, 10): NaN/Inf,
 * integer dtypes where floats belong, a head count the width or the kernels cannot take,
 * sizes too large to allocate, and data tokens beyond the model's vocabulary. `eval` and
 * `sample` run as real processes; each error names the file (and tensor) and the reason.
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { writeTokenData } from "./_train_run.ts";
import { saveCheckpoint } from "../src/io/checkpoint.ts";
import { type Dtype, SafetensorsReader, writeSafetensors } from "../src/io/safetensors.ts";
import { type GPT2Config, makeConfig } from "../src/model/config.ts";
import { hfConfigJson, loadHf, saveHf } from "../src/model/hf.ts";
import { paramLayout, view } from "../src/model/params.ts";
import { loadWeights } from "../src/model/weights.ts";

const EVAL = new URL("../tasks/eval.ts", import.meta.url).pathname;
const SAMPLE = new URL("../tasks/sample.ts", import.meta.url).pathname;

const CONFIG = makeConfig({ numLayers: 1, numHeads: 2, channels: 8, maxSeqLen: 16 });

function weights(config: GPT2Config = CONFIG): Float32Array {
  const layout = paramLayout(config);
  const params = new Float32Array(layout.totalFloats);
  for (const t of layout.tensors) view(params, t).forEach((_, i, a) => a[i] = ((i % 7) - 3) / 50);
  view(params, layout.wte).fill(0, config.vocabSize * config.channels);
  return params;
}

async function run(task: string, args: string[]): Promise<{ code: number; err: string }> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", task, ...args],
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code, err: new TextDecoder().decode(stderr) };
}

/** `eval` and `sample` both exit 1 on `model`, their message holding every part of `reason`. */
async function assertRefused(model: string, data: string, reason: string[]) {
  for (
    const [task, args] of [
      [EVAL, ["--init-from", model, "--data", data, "--seq-len", "8", "--batch-size", "1"]],
      [SAMPLE, ["--from", model, "--tokens", "2"]],
    ] as const
  ) {
    const r = await run(task, [...args]);
    assertEquals(r.code, 1, `${task}: ${r.err}`);
    for (const part of reason) assert(r.err.includes(part), `${task}: "${part}" in\n${r.err}`);
  }
}

/** Rewrite `dir/model.safetensors` with tensor `name` changed by `edit`. */
async function editHfTensor(
  dir: string,
  name: string,
  edit: (data: Float32Array) => { dtype: Dtype; data: ArrayBufferView },
) {
  const path = join(dir, "model.safetensors");
  const reader = await SafetensorsReader.open(path);
  const tensors = [];
  for (const t of reader.tensors) {
    const data = await reader.readF32(t.name);
    const edited = t.name === name ? edit(data) : { dtype: "F32" as Dtype, data };
    tensors.push({ name: t.name, shape: t.shape, ...edited });
  }
  reader.close();
  await writeSafetensors(path, tensors, { format: "pt" });
}

Deno.test("weights: NaN or Inf in a HF model or a checkpoint stops eval and sample, naming file and tensor", async () => {
  const dir = await Deno.makeTempDir({ prefix: "weights_check_" });
  try {
    const data = await writeTokenData(join(dir, "data"), { train: 200, val: 200 });
    const hf = join(dir, "hf");
    await saveHf(hf, CONFIG, weights());
    await editHfTensor(hf, "h.0.attn.c_proj.weight", (d) => {
      d[5] = NaN;
      d[9] = NaN;
      return { dtype: "F32", data: d };
    });
    await assertRefused(hf, data, [
      `${join(hf, "model.safetensors")}: tensor "h.0.attn.c_proj.weight" holds 2 non-finite values`,
      "(the first, at element",
      "corrupt or diverged",
    ]);

    const layout = paramLayout(CONFIG);
    const params = weights();
    view(params, layout.wpe)[3] = -Infinity;
    const checkpoints = join(dir, "checkpoints");
    const file = await saveCheckpoint(checkpoints, {
      step: 4,
      layout: layout.tensors,
      params,
      config: {},
      modelConfig: CONFIG,
    });
    await assertRefused(checkpoints, data, [
      `${file}: tensor "params.wpe.weight" holds 1 non-finite value (the first, at element 3, ` +
      "is -Infinity)",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("weights: integer dtypes where floats belong are refused, naming file, tensor and dtype", async () => {
  const dir = await Deno.makeTempDir({ prefix: "weights_check_" });
  try {
    await saveHf(dir, CONFIG, weights());
    // wpe relabelled I32: its bits would load as integers near +-1e9.
    await editHfTensor(
      dir,
      "wpe.weight",
      (d) => ({ dtype: "I32", data: new Int32Array(d.buffer) }),
    );
    const path = join(dir, "model.safetensors");
    await assertRefused(dir, dir, [
      `${path}: tensor "wpe.weight" has dtype I32; GPT-2 weights are floats (F32, F16, BF16)`,
    ]);
    // F16 is a float: it loads.
    await saveHf(dir, CONFIG, weights());
    await editHfTensor(dir, "wpe.weight", (d) => {
      const half = new Uint16Array(d.length); // +0.0 in f16
      return { dtype: "F16", data: half };
    });
    const loaded = await loadHf(dir);
    assert(view(loaded.params, loaded.layout.wpe).every((x) => x === 0));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("weights: a wrong head count in config.json or a checkpoint's config is named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "weights_check_" });
  try {
    const hf = join(dir, "hf");
    await saveHf(hf, CONFIG, weights());
    const configPath = join(hf, "config.json");
    const json = hfConfigJson(CONFIG);
    const writeConfig = (c: object) => Deno.writeTextFileSync(configPath, JSON.stringify(c));
    writeConfig({ ...json, n_head: 3 }); // does not divide 8
    await assertRefused(hf, dir, [`${configPath}: `, "channels 8 is not divisible by numHeads 3"]);
    writeConfig({ ...json, n_head: 4 }); // head size 2: not one the kernels take
    await assertRefused(hf, dir, [`${configPath}: `, "numHeads 4 gives a head size of", "= 2"]);
    writeConfig({ ...json, num_attention_heads: 1 }); // HF's alias disagrees with n_head 2
    await assertRefused(hf, dir, [
      `${configPath}: "n_head" 2 and "num_attention_heads" 1 disagree`,
    ]);

    const layout = paramLayout(CONFIG);
    const file = await saveCheckpoint(join(dir, "ck"), {
      step: 1,
      layout: layout.tensors,
      params: weights(),
      config: {},
      modelConfig: { ...CONFIG, numHeads: 8 }, // head size 1
    });
    await assertRefused(file, dir, [`${file}: model_config: numHeads 8 gives a head size`]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("weights: n_positions 2^40 is refused naming config.json, before any allocation", async () => {
  const dir = await Deno.makeTempDir({ prefix: "weights_check_" });
  try {
    await saveHf(dir, CONFIG, weights());
    const configPath = join(dir, "config.json");
    Deno.writeTextFileSync(
      configPath,
      JSON.stringify({ ...hfConfigJson(CONFIG), n_positions: 2 ** 40, n_ctx: 2 ** 40 }),
    );
    await assertRefused(dir, dir, [
      `${configPath}: `,
      "maxSeqLen 1099511627776",
      "parameters, over the 4294967296 one Float32Array can hold",
    ]);
    await assertRejects(() => loadWeights(dir), Error, configPath);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("eval: a shard with an llm.c name but a zeroed magic is refused, naming it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "weights_check_" });
  try {
    const data = await writeTokenData(join(dir, "data"), { train: 200, val: 200 });
    const val = join(data, "synth_val_000000.bin");
    const bytes = Deno.readFileSync(val);
    bytes.fill(0, 0, 4);
    Deno.writeFileSync(val, bytes);
    await saveHf(join(dir, "hf"), CONFIG, weights());
    const r = await run(EVAL, ["--init-from", join(dir, "hf"), "--data", data, "--seq-len", "8"]);
    assertEquals(r.code, 1, r.err);
    assert(
      r.err.includes(`${val}: first word 0 is not the llm.c GPT-2 shard magic 20240520`),
      r.err,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

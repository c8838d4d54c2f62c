/**
 * `deno task export`: a bias-free erf-GELU checkpoint (the seed recipe's kind of model) goes out
 * to Hugging Face and llm.c formats. The HF folder is read by the held-out numpy GPT-2 by name
 * and layout, as `transformers` would, and must give `deno task eval`'s val loss on the
 * original; both formats read back bit-identically.
 */
import { assert, assertClose, assertEquals } from "./_assert.ts";
import { join } from "node:path";
import { hasNumpy, python, run } from "./_numpy_reference.ts";
import { makeConfig } from "../src/model/config.ts";
import { paramLayout } from "../src/model/params.ts";
import { initParams } from "../src/model/init.ts";
import { loadWeights } from "../src/model/weights.ts";
import { saveCheckpoint } from "../src/io/checkpoint.ts";

const EXPORT = new URL("../tasks/export.ts", import.meta.url).pathname;
const EVAL = new URL("../tasks/eval.ts", import.meta.url).pathname;
const numpyHere = await hasNumpy("export_test");

/** A bias-free erf model with V=101 (the numpy fixture's vocabulary) saved as a checkpoint. */
async function checkpointFixture(dir: string) {
  const config = makeConfig({
    numLayers: 2,
    numHeads: 2,
    channels: 24,
    maxSeqLen: 32,
    vocabSize: 101,
    bias: false,
    gelu: "erf",
  });
  const layout = paramLayout(config);
  const params = initParams(layout, 11);
  // Gains away from 1, so a dropped or misplaced LayerNorm weight changes the loss.
  for (const t of layout.tensors) {
    if (t.shape.length === 1) {
      for (let i = 0; i < t.size; i++) params[t.offset + i] += 0.1 * Math.sin(i);
    }
  }
  const checkpoints = join(dir, "checkpoints");
  await saveCheckpoint(checkpoints, {
    step: 3,
    layout: layout.tensors,
    params,
    config: {},
    modelConfig: config,
  });
  return { config, layout, params, checkpoints };
}

const deno = (args: string[]) => run(Deno.execPath(), ["run", "-A", ...args]);

Deno.test({
  name: "export: hf folder gives the original's val loss through the numpy GPT-2",
  ignore: !numpyHere,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const { checkpoints } = await checkpointFixture(dir);
      const data = join(dir, "data"), hf = join(dir, "hf");
      await python(["make-data", data, "--tokens", "2048", "--seed", "4"]);
      const exported = await deno([EXPORT, "--from", checkpoints, "--to", hf]);
      assertEquals(exported.code, 0, exported.err);
      for (const name of ["config.json", "model.safetensors", "vocab.json", "merges.txt"]) {
        assert((await Deno.stat(join(hf, name))).size > 0, name);
      }
      const shape = ["--batch-size", "2", "--seq-len", "16", "--eval-steps", "3"];
      const ours = await deno([EVAL, "--init-from", checkpoints, "--data", data, ...shape]);
      assertEquals(ours.code, 0, ours.err);
      const want = JSON.parse(ours.out.trim().split("\n").at(-1)!).val_loss;
      const got = JSON.parse(await python(["eval", "--model", hf, "--data", data, ...shape]))
        .val_loss;
      assertClose([got], [want], { rtol: 1e-5, atol: 0, label: "val loss of the exported folder" });
      // llm.c's file loads through --init-from like any model, with the same loss.
      const bin = join(dir, "model.bin");
      assertEquals(
        (await deno([EXPORT, "--from", checkpoints, "--to", bin, "--format", "llmc"])).code,
        0,
      );
      const llmc = await deno([EVAL, "--init-from", bin, "--data", data, ...shape]);
      assertEquals(llmc.code, 0, llmc.err);
      assertEquals(JSON.parse(llmc.out.trim().split("\n").at(-1)!).val_loss, want);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("export: hf and llmc read back bit-identically", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { config, params, checkpoints } = await checkpointFixture(dir);
    for (const [format, to] of [["hf", join(dir, "hf")], ["llmc", join(dir, "model.bin")]]) {
      const { code, out, err } = await deno([
        EXPORT,
        "--from",
        checkpoints,
        "--to",
        to,
        "--format",
        format,
      ]);
      assertEquals(code, 0, err);
      assert(out.includes(`to ${to} as ${format}`), out);
      const back = await loadWeights(to);
      assertEquals(back.config, config, format);
      assertEquals(back.params, params, format);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("export: bad input is refused naming the flag or path, and nothing is replaced", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { checkpoints } = await checkpointFixture(dir);
    const taken = join(dir, "taken");
    await Deno.mkdir(taken);
    await Deno.writeTextFile(join(taken, "keep.txt"), "mine");
    const format = await deno([
      EXPORT,
      "--from",
      checkpoints,
      "--to",
      join(dir, "x"),
      "--format",
      "onnx",
    ]);
    assertEquals(format.code, 2);
    assert(format.err.includes("--format") && format.err.includes("onnx"), format.err);
    const exists = await deno([EXPORT, "--from", checkpoints, "--to", taken]);
    assertEquals(exists.code, 2);
    assert(exists.err.includes(`--to ${taken}`) && exists.err.includes("--force"), exists.err);
    assertEquals(await Deno.readTextFile(join(taken, "keep.txt")), "mine");
    const notModel = join(dir, "notes.safetensors");
    await Deno.writeTextFile(notModel, "hello");
    const bad = await deno([EXPORT, "--from", notModel, "--to", join(dir, "y")]);
    assertEquals(bad.code, 1);
    assert(bad.err.includes(notModel), bad.err);
    const leftovers = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
      n.includes("export-")
    );
    assertEquals(leftovers, []);
    const forced = await deno([EXPORT, "--from", checkpoints, "--to", taken, "--force"]);
    assertEquals(forced.code, 0, forced.err);
    assert(!(await Deno.stat(join(taken, "keep.txt")).then(() => true, () => false)));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

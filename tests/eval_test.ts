/**
 * `deno task eval` and the GPU model against the held-out float64 numpy GPT-2
 * (tests/reference/gpt2_numpy.py, Hugging Face semantics, written independently):
 * a random HF-layout model with biases and odd sizes (V=101, C=24, HS=12) and random shards.
 *
 * Tolerances, 10x what lavapipe measured (f32 GPU vs f64 numpy; half an f32 ulp of a loss near
 * 4.6 is 5.2e-8 relative): eval loss rtol 2e-7 (measured 1.9e-8); over 3 AdamW steps, losses
 * rtol 7e-7 (6.1e-8) and grad norms rtol 8e-7 (7.2e-8).
 */
import { assert, assertClose, assertEquals } from "./_assert.ts";
import { join } from "node:path";
import { hasNumpy, numpyFixture as fixture, python, run } from "./_numpy_reference.ts";
import { requestGpu } from "../src/gpu/device.ts";
import { DataLoader } from "../src/data/loader.ts";
import { listSplit } from "../src/data/splits.ts";
import { GPT2 } from "../src/model/gpt2.ts";
import { loadHf } from "../src/model/hf.ts";
import { saveCheckpoint } from "../src/io/checkpoint.ts";

const EVAL_TASK = new URL("../tasks/eval.ts", import.meta.url).pathname;
const numpyHere = await hasNumpy("eval_test");

for (const activation of ["gelu_new", "gelu"] as const) {
  Deno.test({
    name: `eval: deno task eval matches the numpy GPT-2 (${activation})`,
    ignore: !numpyHere,
    async fn() {
      const { dir, model, data } = await fixture(activation);
      try {
        const flags = [
          "--model",
          model,
          "--data",
          data,
          "--batch-size",
          "2",
          "--seq-len",
          "16",
          "--eval-steps",
          "3",
        ];
        const want = JSON.parse(await python(["eval", ...flags])).val_loss;
        // The same weights as a Hugging Face dir and as one of our checkpoints.
        const { config, layout, params } = await loadHf(model);
        const checkpoints = join(dir, "checkpoints");
        await saveCheckpoint(checkpoints, {
          step: 1,
          layout: layout.tensors,
          params,
          config: {},
          modelConfig: config,
        });
        for (const initFrom of [model, checkpoints]) {
          const { code, out, err } = await run(Deno.execPath(), [
            "run",
            "-A",
            EVAL_TASK,
            "--init-from",
            initFrom,
            ...flags.slice(2),
          ]);
          assertEquals(code, 0, err);
          const lines = out.trim().split("\n");
          const got = JSON.parse(lines[lines.length - 1]).val_loss;
          assertClose([got], [want], { rtol: 2e-7, atol: 0, label: `val_loss of ${initFrom}` });
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: "eval: 3 AdamW steps of the GPU model match the numpy GPT-2's losses",
  ignore: !numpyHere,
  async fn() {
    const { dir, model, data } = await fixture("gelu_new");
    try {
      const B = 2, T = 16, steps = 3;
      const hyper = {
        lr: 1e-3,
        weightDecay: 0.1,
        gradClip: 1.0,
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
      };
      const want = JSON.parse(
        await python([
          "train",
          "--model",
          model,
          "--data",
          data,
          "--batch-size",
          `${B}`,
          "--seq-len",
          `${T}`,
          "--train-steps",
          `${steps}`,
          "--lr",
          `${hyper.lr}`,
          "--weight-decay",
          `${hyper.weightDecay}`,
          "--grad-clip",
          `${hyper.gradClip}`,
        ]),
      );
      const { config, params } = await loadHf(model);
      const gpu = await requestGpu();
      const gpt = await GPT2.create(gpu, config, { B, T });
      using loader = new DataLoader(listSplit(data, "train"), { B, T, vocab: config.vocabSize });
      try {
        gpt.upload("params", params);
        await gpt.setOptimizer(hyper);
        const losses: number[] = [], norms: number[] = [];
        for (let t = 1; t <= steps; t++) {
          const batch = loader.next();
          gpt.zeroGrads();
          gpt.uploadBatch(batch.inputs, batch.targets);
          gpt.step();
          gpt.optimizerStep(t, hyper.lr);
          losses.push(await gpt.readLoss());
          norms.push(await gpt.readGradNorm());
        }
        assertClose(losses, want.losses, { rtol: 7e-7, atol: 0, label: "train losses" });
        assertClose(norms, want.grad_norms, { rtol: 8e-7, atol: 0, label: "grad norms" });
        assert(losses[2] !== losses[0], "the weights changed");
      } finally {
        gpt.destroy();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("eval: flags are checked with clear errors", async () => {
  const help = await run(Deno.execPath(), ["run", "-A", EVAL_TASK, "--help"]);
  assertEquals(help.code, 0);
  assert(help.out.includes("--init-from"), help.out);
  const missing = await run(Deno.execPath(), ["run", "-A", EVAL_TASK, "--data", "x"]);
  assertEquals(missing.code, 2);
  assert(missing.err.includes("--init-from is required"), missing.err);
  const bad = await run(Deno.execPath(), ["run", "-A", EVAL_TASK, "--batch-size", "zero"]);
  assertEquals(bad.code, 2);
  assert(bad.err.includes("--batch-size"), bad.err);
});

/**
 * `deno task train` against the held-out float64 numpy GPT-2 (PyTorch AdamW semantics):
 * from the same Hugging Face weights and data, the train loss of each of 10 AdamW steps, read
 * from metrics.jsonl, agrees to 5e-7 relative: 10x the 4.6e-8 measured on lavapipe (f32 vs f64;
 * half an f32 ulp of a loss near 4.6 is 5.2e-8 relative).
 */
import { join } from "node:path";
import { assertClose, assertEquals } from "./_assert.ts";
import { hasNumpy, numpyFixture, python } from "./_numpy_reference.ts";
import { runTrain, trainLosses } from "./_train_run.ts";

const numpyHere = await hasNumpy("train_reference_test");

Deno.test({
  name: "train: 10 AdamW steps through the CLI match the numpy reference to 5e-7",
  ignore: !numpyHere,
  async fn() {
    const { dir, model, data } = await numpyFixture("gelu_new", 4096);
    try {
      const out = join(dir, "out");
      await runTrain([
        ...["--init-from", model, "--data", data, "--out", out, "--max-steps", "10"],
        ...["--batch-size", "4", "--seq-len", "32", "--grad-accum", "1"],
        ...["--lr", "1e-3", "--min-lr", "1e-3", "--warmup-steps", "0"],
        ...["--weight-decay", "0.1", "--grad-clip", "1.0", "--eval-interval", "0"],
        ...["--sample-tokens", "0", "--optimizer", "adamw"],
      ]);
      const got = await trainLosses(out);
      const want: number[] = JSON.parse(
        await python([
          ...["train", "--model", model, "--data", data, "--batch-size", "4", "--seq-len", "32"],
          ...["--train-steps", "10", "--lr", "1e-3", "--weight-decay", "0.1", "--grad-clip", "1.0"],
        ]),
      ).losses;
      assertEquals([...got.keys()], Array.from({ length: 10 }, (_, i) => i + 1));
      const worst = Math.max(...want.map((w, i) => Math.abs(got.get(i + 1)! - w) / Math.abs(w)));
      console.log(
        `train vs numpy: worst relative loss difference over 10 steps ${worst.toExponential(2)}`,
      );
      assertClose([...got.values()], want, { rtol: 5e-7, atol: 0, label: "train loss" });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

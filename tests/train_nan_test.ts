/** A NaN or Inf loss stops the run with a clear message and keeps the last good checkpoint. */
import { join } from "node:path";
import { assert } from "./_assert.ts";
import { spawnTrain, tinyRunArgs, writeTokenData } from "./_train_run.ts";
import { latestCheckpoint, loadCheckpoint } from "../src/io/checkpoint.ts";

Deno.test("train: a diverging run stops and names the last good checkpoint", async () => {
  const dir = await Deno.makeTempDir({ prefix: "train_nan_" });
  try {
    const data = await writeTokenData(join(dir, "data"));
    const out = join(dir, "out");
    // An absurd learning rate blows the weights up within a few steps.
    const child = spawnTrain(tinyRunArgs(data, out, [
      ...["--lr", "1e12", "--min-lr", "1e12", "--warmup-steps", "0", "--grad-clip", "0"],
      ...["--checkpoint-interval", "1"],
    ]));
    const { code, stderr } = await child.output();
    const message = new TextDecoder().decode(stderr);
    assert(code !== 0, "the run should fail");
    const last = latestCheckpoint(join(out, "checkpoints"));
    assert(last, "a checkpoint from before the divergence is kept");
    assert(/step \d+: the (loss is (NaN|-?Infinity)|parameters hold NaN)/.test(message), message);
    assert(message.includes(`The last good checkpoint is ${last}`), message);
    using checkpoint = await loadCheckpoint(last);
    assert(checkpoint.step >= 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

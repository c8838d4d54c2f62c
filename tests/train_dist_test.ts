/**
 * Data-parallel training through real rank processes and the Unix-socket all-reduce:
 * 2 ranks at batch B match 1 rank at 2B over the same tokens, all ranks hold identical
 * parameters (the trainer checks it at every checkpoint), only rank 0 writes, and a
 * 2-rank run stopped with SIGINT resumes to the uninterrupted 2-rank losses bit for bit.
 */
import { join } from "node:path";
import { assert, assertClose, assertEquals } from "./_assert.ts";
import { runTrain, spawnTrain, tinyRunArgs, trainLosses, writeTokenData } from "./_train_run.ts";
import { listCheckpoints } from "../src/io/checkpoint.ts";

/**
 * Tolerance between 1 rank at 2B and 2 ranks at B: the same math, summed in a different
 * order (per-rank means then a mean of two, vs one mean over 2B rows): f32 rounding only.
 */
const RTOL = 1e-4;

Deno.test("dist: 2 ranks at B equal 1 rank at 2B; only rank 0 writes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "train_dist_" });
  try {
    const data = await writeTokenData(join(dir, "data"));
    const one = join(dir, "one"), two = join(dir, "two");
    await runTrain(tinyRunArgs(data, one, ["--batch-size", "2"]));
    await runTrain(tinyRunArgs(data, two, ["--batch-size", "1", "--nproc", "2"]));
    const a = await trainLosses(one), b = await trainLosses(two);
    assertEquals([...b.keys()], [...a.keys()]);
    assertClose([...b.values()], [...a.values()], { rtol: RTOL, atol: 0, label: "train loss" });
    // The losses must actually have moved, or the comparison says little.
    assert(a.get(12)! < a.get(1)! - 0.1, `loss did not fall: ${a.get(1)} -> ${a.get(12)}`);
    const events = [...Deno.readDirSync(join(two, "tensorboard"))];
    assertEquals(events.length, 1, "one TensorBoard file (rank 0's)");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dist: a 2-rank run stopped by SIGINT resumes bit for bit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "train_dist_resume_" });
  try {
    const data = await writeTokenData(join(dir, "data"));
    const args = (out: string, extra: string[] = []) =>
      tinyRunArgs(data, out, ["--batch-size", "1", "--nproc", "2", ...extra]);
    const straight = join(dir, "straight"), stopped = join(dir, "stopped");
    await runTrain(args(straight));
    const child = spawnTrain(args(stopped));
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline && listCheckpoints(join(stopped, "checkpoints")).length === 0) {
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill("SIGINT");
    const status = await child.output();
    assert(status.code !== 0 || listCheckpoints(join(stopped, "checkpoints")).at(-1)?.step === 12);
    await runTrain(args(stopped, ["--resume"]));
    assertEquals([...(await trainLosses(stopped)).entries()], [
      ...(await trainLosses(straight)).entries(),
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

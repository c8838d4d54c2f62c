/**
 * Kill -9 at random moments, then --resume: the run continues and its losses are bit-identical
 * to an uninterrupted run's (same adapter, same flags).
 */
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { runTrain, spawnTrain, tinyRunArgs, trainLosses, writeTokenData } from "./_train_run.ts";
import { listCheckpoints } from "../src/io/checkpoint.ts";

Deno.test("resume: kill -9 then --resume reproduces the uninterrupted losses bit for bit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "resume_test_" });
  try {
    const data = await writeTokenData(join(dir, "data"));
    const straight = join(dir, "straight");
    await runTrain(tinyRunArgs(data, straight));
    const want = await trainLosses(straight);
    assertEquals([...want.keys()], Array.from({ length: 12 }, (_, i) => i + 1));

    const broken = join(dir, "broken");
    const checkpoints = join(broken, "checkpoints");
    const newest = () => listCheckpoints(checkpoints).at(-1)?.step ?? 0;
    let kills = 0;
    // Kill a few times at random moments after a new checkpoint appears, resuming each time,
    // until the run has saved its last step (resuming then is a usage error: nothing to do).
    for (let attempt = 0; attempt < 3 && newest() < 12; attempt++) {
      const child = spawnTrain(tinyRunArgs(data, broken, attempt > 0 ? ["--resume"] : []));
      const seen = newest();
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline && newest() <= seen) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, Math.random() * 700));
      try {
        child.kill("SIGKILL");
        kills++;
      } catch { /* it finished first */ }
      const { code, signal } = await child.status;
      assert(code === 0 || signal === "SIGKILL", `attempt ${attempt} exited ${code}`);
      await child.stdout.cancel();
      await child.stderr.cancel();
    }
    assert(kills > 0, "the run was never killed");
    if (newest() < 12) await runTrain(tinyRunArgs(data, broken, ["--resume"]));
    const got = await trainLosses(broken);
    assertEquals([...got.entries()], [...want.entries()]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

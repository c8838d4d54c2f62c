/**
 * `--optimizer muon` through the real trainer: it learns and is not AdamW; a run killed with
 * SIGKILL and resumed reproduces the uninterrupted losses bit for bit (Muon's momentum travels
 * in the checkpoint's adam_m group); 2 ranks at B equal 1 rank at 2B (Muon runs after the
 * all-reduce, as part of the optimizer step).
 */
import { join } from "node:path";
import { assert, assertClose, assertEquals } from "./_assert.ts";
import {
  runTrain,
  spawnTrain,
  tinyRunArgs,
  trainLosses,
  trainOutcome,
  writeTokenData,
} from "./_train_run.ts";
import { listCheckpoints } from "../src/io/checkpoint.ts";

const MUON = ["--optimizer", "muon"];

Deno.test("muon train: learns, differs from AdamW, and kill -9 then --resume is bit-exact", async () => {
  const dir = await Deno.makeTempDir({ prefix: "muon_train_" });
  try {
    const data = await writeTokenData(join(dir, "data"));
    const adamw = join(dir, "adamw"), straight = join(dir, "straight");
    await runTrain(tinyRunArgs(data, adamw));
    await runTrain(tinyRunArgs(data, straight, MUON));
    const want = await trainLosses(straight);
    assertEquals([...want.keys()], Array.from({ length: 12 }, (_, i) => i + 1));
    assert(
      want.get(12)! < want.get(1)! - 0.1,
      `loss did not fall: ${want.get(1)} -> ${want.get(12)}`,
    );
    const other = await trainLosses(adamw);
    assertEquals(want.get(1), other.get(1), "step 1's loss is the initial weights'");
    assert(want.get(12) !== other.get(12), "Muon's losses equal AdamW's");

    const broken = join(dir, "broken");
    const checkpoints = join(broken, "checkpoints");
    const child = spawnTrain(tinyRunArgs(data, broken, MUON));
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline && listCheckpoints(checkpoints).length === 0) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, Math.random() * 500));
    child.kill("SIGKILL");
    await child.output();
    const resumedFrom = listCheckpoints(checkpoints).at(-1)?.step ?? 0;
    assert(resumedFrom >= 3 && resumedFrom < 12, `killed too late: checkpoint ${resumedFrom}`);
    // Resuming Muon's state as AdamW's would be wrong: a usage error that says what to do.
    const wrong = await trainOutcome(tinyRunArgs(data, broken, ["--resume"]));
    assertEquals(wrong.code, 2, wrong.stderr);
    assert(wrong.stderr.includes("resume with --optimizer muon"), wrong.stderr);
    await runTrain(tinyRunArgs(data, broken, [...MUON, "--resume"]));
    assertEquals([...(await trainLosses(broken)).entries()], [...want.entries()]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("muon train: 2 ranks at B equal 1 rank at 2B", async () => {
  const dir = await Deno.makeTempDir({ prefix: "muon_dist_" });
  try {
    const data = await writeTokenData(join(dir, "data"));
    const one = join(dir, "one"), two = join(dir, "two");
    await runTrain(tinyRunArgs(data, one, [...MUON, "--batch-size", "2"]));
    await runTrain(tinyRunArgs(data, two, [...MUON, "--batch-size", "1", "--nproc", "2"]));
    const a = await trainLosses(one), b = await trainLosses(two);
    assertEquals([...b.keys()], [...a.keys()]);
    // f32 rounding only (per-rank means then a mean of two): as tests/train_dist_test.ts.
    assertClose([...b.values()], [...a.values()], { rtol: 1e-4, atol: 0, label: "train loss" });
    assert(a.get(12)! < a.get(1)! - 0.1, `loss did not fall: ${a.get(1)} -> ${a.get(12)}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

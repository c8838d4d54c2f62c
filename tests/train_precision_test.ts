/**
 * `deno task train --precision`: an f16 run logs its loss scale (console, metrics.jsonl,
 * TensorBoard) and saves it in checkpoints; checkpoints hold f32 master weights, so a run
 * saved in one precision resumes in another.
 */
import { assert, assertEquals } from "./_assert.ts";
import { join } from "node:path";
import { runTrain, tinyRunArgs, trainLosses, writeTokenData } from "./_train_run.ts";
import { readMetrics } from "../src/log/metrics.ts";
import { readEvents } from "../src/log/tensorboard.ts";
import { latestCheckpoint, loadCheckpoint } from "../src/io/checkpoint.ts";

Deno.test("train --precision f16: the loss scale is logged and checkpointed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = await writeTokenData(join(dir, "data"));
    const out = join(dir, "out");
    const text = await runTrain(
      tinyRunArgs(data, out, ["--precision", "f16", "--log-interval", "4"]),
    );
    assert(/scale 65536 \(0 skipped\)/.test(text), text);
    const scaled = (await readMetrics(join(out, "metrics.jsonl"))).filter((r) => r.loss_scale);
    assertEquals(scaled.map((r) => r.step), [3, 4, 6, 8, 9, 12]); // readbacks: logs and saves
    assert(scaled.every((r) => r.loss_scale === 65536 && r.skipped_steps === 0));
    const tb = join(out, "tensorboard");
    const tagged = [...Deno.readDirSync(tb)].flatMap((e) => readEvents(join(tb, e.name)))
      .filter((e) => e.scalars.some((s) => s.tag === "loss_scale"));
    assertEquals(tagged.length, scaled.length);
    using ck = await loadCheckpoint(latestCheckpoint(join(out, "checkpoints"))!);
    assertEquals(ck.trainerState, { lossScale: 65536, skippedSteps: 0 });
    const losses = [...(await trainLosses(out)).values()];
    assert(losses.every(Number.isFinite) && losses.at(-1)! < losses[0], `${losses}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train --precision: an f32 run resumes in bf16 close to the f32 losses", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = await writeTokenData(join(dir, "data"));
    const [whole, split] = [join(dir, "whole"), join(dir, "split")];
    await runTrain(tinyRunArgs(data, whole, ["--checkpoint-interval", "6"]));
    // The same run's folder, rewound to its step-6 checkpoint, continues in bf16.
    await new Deno.Command("cp", { args: ["-r", whole, split] }).output();
    await Deno.remove(join(split, "checkpoints", "step_00000012.safetensors"));
    const text = await runTrain(
      tinyRunArgs(data, split, ["--checkpoint-interval", "6", "--resume", "--precision", "bf16"]),
    );
    assert(text.includes("resuming from"), text);
    const [a, b] = [await trainLosses(whole), await trainLosses(split)];
    for (let step = 1; step <= 12; step++) {
      const rel = Math.abs(b.get(step)! - a.get(step)!) / a.get(step)!;
      assert(step <= 6 ? rel === 0 : rel < 1e-2, `step ${step}: ${b.get(step)} vs ${a.get(step)}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

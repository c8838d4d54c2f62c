/**
 * `--time-budget`: the run times its first steps, fixes and prints its step count, ends by
 * itself, and equals bit for bit a run given that count with `--max-steps`; a resume keeps the
 * count it saved.
 */
import { assert, assertEquals } from "./_assert.ts";
import { join } from "node:path";
import {
  clockFrom,
  describeSizing,
  stepsForBudget,
  stepsToTime,
} from "../src/train/step_budget.ts";
import { runTrain, tinyRunArgs, trainLosses, trainOutcome, writeTokenData } from "./_train_run.ts";

const TIMING = {
  budgetS: 600,
  elapsedS: 30,
  stepsDone: 5,
  stepS: 1,
  evalS: 10,
  evalInterval: 50,
  finalS: 20,
};

Deno.test("step budget: steps that fit what is left, evals amortised, never fewer than done", () => {
  // 550 s left, 93% of it planned (511.5 s), at 1 s per step plus 10 s per 50 steps: 426 more.
  assertEquals(stepsForBudget(TIMING), 5 + 426);
  assertEquals(stepsForBudget({ ...TIMING, evalInterval: 0 }), 5 + 511);
  assertEquals(stepsForBudget({ ...TIMING, elapsedS: 700 }), 5);
  // The last warmup step up to 20, timed over up to 10 steps before it, never from step 0 when
  // there is another.
  assertEquals([30, 20, 3, 1, 0].map(stepsToTime), [20, 20, 3, 1, 1]);
  assertEquals([20, 11, 4, 2, 1].map(clockFrom), [10, 1, 1, 1, 0]);
  assert(describeSizing(TIMING, 463, "steps 2-5").endsWith("--max-steps 463 reproduces this run)"));
});

/** tinyRunArgs without its --max-steps. */
function budgetArgs(data: string, out: string, extra: string[]): string[] {
  const args = tinyRunArgs(data, out, extra);
  args.splice(args.indexOf("--max-steps"), 2);
  return args;
}

Deno.test("step budget: a sized run ends by itself and equals --max-steps of its count", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = await writeTokenData(join(dir, "data"), { train: 4000, val: 600 });
    const sized = join(dir, "sized");
    // Warmup 4: steps 2-4 are timed. The budget counts from the process start (startup and
    // kernel compiles included), so a loaded machine may leave room for no more steps at all.
    const extra = ["--warmup-steps", "4", "--eval-interval", "5", "--eval-steps", "2"];
    const text = await runTrain(budgetArgs(data, sized, ["--time-budget", "20", ...extra]));
    const fixed = text.match(/-> (\d+) steps \(--max-steps (\d+) reproduces this run\)/);
    assert(fixed && fixed[1] === fixed[2], text);
    const steps = Number(fixed[1]);
    assert(steps >= 4, text);
    assert(
      text.includes("time budget 20 s (--time-budget):") && text.includes("(steps 2-4)"),
      text,
    );
    assert(text.includes(`step 1/?`) && text.includes(`step ${steps}/${steps}`), text);
    const losses = await trainLosses(sized);
    assertEquals([...losses.keys()], Array.from({ length: steps }, (_, i) => i + 1));

    const pinned = join(dir, "pinned");
    await runTrain(tinyRunArgs(data, pinned, ["--max-steps", String(steps), ...extra]));
    assertEquals(await trainLosses(pinned), losses);
    const valLosses = async (out: string) =>
      (await Deno.readTextFile(join(out, "metrics.jsonl"))).split("\n")
        .filter((l) => l.includes("val_loss"));
    // The last eval is at the last step, whether or not the interval divides it.
    const vals = await valLosses(sized);
    assert(vals.at(-1)!.includes(`"step":${steps},`), vals.join("\n"));
    assertEquals(await valLosses(pinned), vals);

    // The count is saved: resuming the finished run has nothing left to do, and says why.
    const again = await trainOutcome(budgetArgs(data, sized, ["--resume", ...extra]));
    assertEquals(again.code, 2, again.stderr);
    assert(again.stderr.includes(`the step count ${steps} saved with it`), again.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

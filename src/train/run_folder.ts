/**
 * A run folder (`--out`) belongs to one run at a time, and nothing in it is ever lost: rank 0
 * locks it for the whole run (src/io/run_lock.ts), and a fresh run (no `--resume`) into a
 * folder that already holds a run refuses, or with `--move-aside` first moves that run's files
 * into a sibling folder `OUT.old-<time>`. Other ranks never write the folder.
 */
import { basename, dirname, join, resolve } from "node:path";
import { describeHolder, RunLock } from "../io/run_lock.ts";
import { syncDir } from "../io/atomic.ts";
import type { TrainConfig } from "./options.ts";

/** What a run writes into its folder; any of them there means the folder holds a run. */
export const RUN_FILES = ["metrics.jsonl", "tensorboard", "checkpoints", "sample.txt"] as const;

/**
 * Take `config.out` for this run (rank 0 only): lock it, then, for a fresh run, make sure no
 * earlier run's files are there (refuse, or move them aside with `config.moveAside`).
 * Release the lock returned when the run ends.
 */
export async function claimRunFolder(
  config: Pick<TrainConfig, "out" | "resume" | "moveAside">,
): Promise<RunLock> {
  const lock = await RunLock.acquire(config.out);
  try {
    if (lock.previous) {
      console.warn(
        `warning: ${lock.path}: the previous run (${describeHolder(lock.previous)}) ended ` +
          "without releasing it (killed?); taking it over",
      );
    }
    if (!config.resume) await clearForFreshRun(config.out, config.moveAside);
    return lock;
  } catch (e) {
    lock.release();
    throw e;
  }
}

async function clearForFreshRun(out: string, moveAside: boolean): Promise<void> {
  const found: string[] = [];
  for (const name of RUN_FILES) {
    try {
      await Deno.lstat(join(out, name));
      found.push(name);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  if (found.length === 0) return;
  if (!moveAside) {
    throw new Error(
      `${out} already holds a run (${found.join(", ")}): continue it with --resume, start a new ` +
        "one with another --out, or add --move-aside to move the old run's files aside " +
        "(nothing is deleted)",
    );
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const full = resolve(out);
  const aside = join(dirname(full), `${basename(full)}.old-${stamp}`);
  await Deno.mkdir(aside);
  for (const name of found) await Deno.rename(join(out, name), join(aside, name));
  await syncDir(full);
  await syncDir(dirname(full));
  console.log(`--move-aside: moved the earlier run in ${out} (${found.join(", ")}) to ${aside}`);
}

/**
 * A rank's lifeline to the `launch()` that started it: the launcher holds the write end of a
 * pipe on each rank's stdin and never writes to it. When the launcher dies, however it dies
 * (SIGKILL included), the kernel closes that end and the rank reads EOF; the rank then removes
 * the job's socket folder and exits, so no rank outlives its launcher and nothing is left in
 * the runtime folder.
 *
 * Why a pipe rather than polling the parent pid: EOF arrives at once without a timer, cannot be
 * fooled by pid reuse or by a wrapper (shell, `env`) between launcher and rank, and works on
 * every OS without FFI (Linux's PR_SET_PDEATHSIG would need both). Its cost: a pending read
 * keeps the process alive, so the watch stops when the communicator closes, which a rank must
 * do anyway (the ring's Worker keeps it alive too).
 */
import type { Env } from "./rank.ts";
import { SOCKET_DIR_ENV } from "./socket_dir.ts";

/** Set by `launch()` to its pid: tells a rank that its stdin is the launcher's pipe. */
export const LAUNCHER_PID_ENV = "REPGPT_LAUNCHER_PID";

/** A running watch on the launcher's pipe. */
export interface Lifeline {
  /** Stops watching (closes stdin) so the process can exit normally. Idempotent. */
  stop(): void;
}

/**
 * Starts watching stdin for EOF when `launch()` started this process ({@link LAUNCHER_PID_ENV}
 * is set); returns undefined otherwise. On EOF: says so on stderr, removes `REPGPT_SOCKET_DIR`
 * and exits with code 1.
 */
export function watchLauncher(env: Env = Deno.env.toObject()): Lifeline | undefined {
  const launcherPid = env[LAUNCHER_PID_ENV];
  if (launcherPid === undefined) return undefined;
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    try {
      Deno.stdin.close(); // cancels the pending read
    } catch { /* already closed */ }
  };
  (async () => {
    const buf = new Uint8Array(256);
    try {
      while (await Deno.stdin.read(buf) !== null) { /* the launcher never writes: ignore */ }
    } catch {
      if (stopped) return; // closed by stop(): a normal end
      // Any other read error means the pipe is broken: the launcher is gone as well.
    }
    if (stopped) return;
    launcherGone(launcherPid, env);
  })();
  return { stop };
}

function launcherGone(launcherPid: string, env: Env): never {
  const dir = env[SOCKET_DIR_ENV];
  if (dir) removeFolder(dir);
  try {
    // stderr may be a pipe to the dead launcher (ranks other than 0): the message is best effort.
    Deno.stderr.writeSync(
      new TextEncoder().encode(
        `rank ${env.RANK ?? "?"}: the launcher (pid ${launcherPid}) is gone; stopping\n`,
      ),
    );
  } catch { /* nobody is listening */ }
  Deno.exit(1);
}

/**
 * Removes `dir` and what is in it. Every rank does this at once, and a dying peer may still
 * write its failure report there, so a removal that races another is tried again.
 */
function removeFolder(dir: string): void {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      Deno.removeSync(dir, { recursive: true });
      return;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
    }
  }
}

/**
 * One process at a time per run folder: an exclusive advisory lock (flock) on `DIR/.lock`.
 * The kernel releases it when the holder exits, however it exits (kill -9 included), so a lock
 * can never be stale; the file's text says who holds it (pid, host, start time) for the
 * message a second process gets. A clean release empties the file, so text found there by the
 * next holder means the previous one died holding it, which is reported.
 *
 * The file stays: removing it on release would let a process that opened the old file lock a
 * name that a newer process has already recreated and locked.
 */
import { join } from "node:path";
import { writeAll } from "./atomic.ts";

/** Who holds a run folder's lock: the lock file's JSON text. */
export interface LockHolder {
  pid: number;
  host: string;
  /** ISO time the holder took the lock. */
  since: string;
}

/** A held run-folder lock; release it (or `using` it) when the run ends. */
export class RunLock implements Disposable {
  private constructor(
    /** The lock file, `DIR/.lock`. */
    readonly path: string,
    /** A holder that died without releasing the lock (it was taken over), or null. */
    readonly previous: LockHolder | null,
    private readonly file: Deno.FsFile,
  ) {}

  /**
   * Take `dir`'s lock, creating `dir` if needed. Throws at once, naming the folder and the
   * holder's pid and host, when another process holds it.
   */
  static async acquire(dir: string): Promise<RunLock> {
    await Deno.mkdir(dir, { recursive: true });
    const path = join(dir, ".lock");
    // Not truncated on open: the text belongs to the holder until the lock is ours.
    const file = await Deno.open(path, { read: true, write: true, create: true });
    try {
      if (!(await file.tryLock(true))) {
        const holder = parseHolder(await Deno.readTextFile(path));
        throw new Error(
          `${dir} is in use by another run (${describeHolder(holder)}; lock file ${path}): wait ` +
            "for it to finish or stop it, or give this run another --out",
        );
      }
      const previous = parseHolder(await Deno.readTextFile(path));
      const me: LockHolder = {
        pid: Deno.pid,
        host: Deno.hostname(),
        since: new Date().toISOString(),
      };
      await file.truncate(0);
      await writeAll(file, new TextEncoder().encode(JSON.stringify(me) + "\n"));
      return new RunLock(path, previous, file);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /** Empty the lock file (a clean exit) and release the lock. */
  release(): void {
    this.file.truncateSync(0);
    this.file.close(); // closing the last handle releases the flock
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

/** "pid 123 on host h since 2025-..." for messages. */
export function describeHolder(holder: LockHolder | null): string {
  return holder
    ? `pid ${holder.pid} on host ${holder.host} since ${holder.since}`
    : "holder unknown";
}

function parseHolder(text: string): LockHolder | null {
  try {
    const h = JSON.parse(text);
    return Number.isInteger(h?.pid) && typeof h.host === "string" ? h : null;
  } catch {
    return null;
  }
}

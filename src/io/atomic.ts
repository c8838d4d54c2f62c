/**
 * Crash-safe file replacement: write a temporary file beside the target, fsync it, rename it
 * over the target, fsync the directory. A process killed at any moment (kill -9, OOM, power
 * loss once the fsyncs returned) leaves either the old file or the new one under the real name,
 * never a partial one. What may be left behind is a `<name>.tmp-<pid>` file, which
 * {@link removeStaleTemps} cleans up. A failed write (a full disk, say) names the file.
 */
import { basename, dirname, join } from "node:path";

/** The temporary name used for `path` by this process. */
export function tempPathFor(path: string): string {
  return `${path}.tmp-${Deno.pid}`;
}

/**
 * Replace `path` atomically with what `write` writes into the (fresh, empty) file handle.
 * The directory must exist. On error the temporary file is removed and the target untouched.
 */
export async function writeFileAtomic(
  path: string,
  write: (file: Deno.FsFile) => Promise<void> | void,
): Promise<void> {
  const tmp = tempPathFor(path);
  let file: Deno.FsFile | null = null;
  try {
    file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    await write(file);
    await file.sync();
    file.close();
    file = null;
    await Deno.rename(tmp, path);
  } catch (e) {
    file?.close();
    await Deno.remove(tmp).catch(() => {});
    throw namingPath(e, path);
  }
  await syncDir(dirname(path)).catch((e) => Promise.reject(namingPath(e, path)));
}

/**
 * `e`, or for an error that does not name `path` (the OS's "No space left on device (os error
 * 28)" names nothing), an error that does, with `e` as its cause.
 */
export function namingPath(e: unknown, path: string): Error {
  const error = e instanceof Error ? e : new Error(String(e));
  if (error.message.includes(path)) return error;
  return new Error(`${path}: cannot write: ${error.message}`, { cause: error });
}

/** {@link writeFileAtomic} for bytes or text already in memory. */
export async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  await writeFileAtomic(path, (file) => writeAll(file, bytes));
}

/** Write every byte of `data` (a single `write` may write fewer). */
export async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  for (let done = 0; done < data.length;) done += await file.write(data.subarray(done));
}

/** fsync a directory so that a rename or create inside it survives a power loss. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await Deno.open(dir || ".", { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}

/**
 * Remove `*.tmp-<pid>` files in `dir` left by processes that died mid-write. Files of live
 * processes (this one included) are kept, so a concurrent writer is not disturbed. Returns the
 * names removed.
 */
export async function removeStaleTemps(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const match = /\.tmp-(\d+)$/.exec(entry.name);
    if (!entry.isFile || !match || isAlive(Number(match[1]))) continue;
    await Deno.remove(join(dir, entry.name)).catch(() => {});
    removed.push(basename(entry.name));
  }
  return removed;
}

/** Whether process `pid` is running (this one always is); true when it cannot be told. */
export function isAlive(pid: number): boolean {
  if (pid === Deno.pid) return true;
  // Linux: /proc/<pid> exists while the process does. Without /proc, assume it is alive.
  if (!exists("/proc/self")) return true;
  return exists(`/proc/${pid}`);
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

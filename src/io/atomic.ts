/**
 * Crash-safe file replacement: write a temporary file beside the target, fsync it, rename it
 * over the target, fsync the directory. A process killed at any moment (kill -9, OOM, power
 * loss once the fsyncs returned) leaves either the old file or the new one under the real name,
 * never a partial one. What may be left behind is a `<name>.tmp-<pid>` file, which
 * {@link removeStaleTemps} cleans up.
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
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    await write(file);
    await file.sync();
  } catch (e) {
    file.close();
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  file.close();
  await Deno.rename(tmp, path);
  await syncDir(dirname(path));
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

function isAlive(pid: number): boolean {
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

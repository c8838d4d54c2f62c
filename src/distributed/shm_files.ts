/**
 * Names of the shared-memory transport's files and the removal of stale ones. A rank's file is
 * `shm.rank<r>.<pid>-<start time>.map` in the job's rank folder; it has a name only while the
 * ranks set up (they then remove it and keep it open), so a name that outlives its process
 * means a rank died during setup. The pid and its start time (from /proc, which pid reuse
 * cannot fake) tell whether the process that made it still runs.
 */
import { join } from "node:path";

const MAPPING = /^shm\.rank(\d+)\.(\d+)-(\d+)\.map$/;

/** The start time of process `pid` (clock ticks after boot), or undefined when it is gone. */
function startTime(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name, which may hold spaces and ends at the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[0] === "Z" ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

/** This process's file name for rank `rank`. */
export function mappingName(rank: number): string {
  return `shm.rank${rank}.${Deno.pid}-${startTime(Deno.pid) ?? 0}.map`;
}

/** Whether the process that created the file `name` still runs. */
function creatorAlive(name: string): boolean {
  const m = name.match(MAPPING);
  return m !== null && startTime(Number(m[2])) === m[3];
}

/** The path of rank `rank`'s file in `dir`; throws unless exactly one live one is there. */
export function findMapping(dir: string, rank: number): string {
  const names = [...Deno.readDirSync(dir)].map((e) => e.name)
    .filter((n) => n.match(MAPPING)?.[1] === `${rank}` && creatorAlive(n));
  if (names.length !== 1) {
    throw new Error(
      `rank folder ${dir} holds ${names.length} shared-memory files of rank ${rank}, expected ` +
        "1 (two jobs sharing a folder?)",
    );
  }
  return join(dir, names[0]);
}

/**
 * Removes the files in `dir` whose processes are gone (left by a rank killed during setup),
 * saying so on stderr; returns their paths. Races with other ranks doing the same are harmless.
 */
export function removeStaleMappings(dir: string): string[] {
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return removed; // gone or unreadable: nothing of ours to clean
  }
  for (const { name, isFile } of entries) {
    if (!isFile || !MAPPING.test(name) || creatorAlive(name)) continue;
    const path = join(dir, name);
    try {
      Deno.removeSync(path);
      removed.push(path);
      console.error(`removed ${path}: a stale shared-memory file (its process is gone)`);
    } catch { /* another rank was first */ }
  }
  return removed;
}

/**
 * Does {@link removeStaleMappings} in every rank folder (`repgpt-*`, ours, not a symlink)
 * directly under `base`, e.g. those that crashed runs left in $XDG_RUNTIME_DIR.
 */
export function removeStaleMappingsUnder(base: string): string[] {
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(base)];
  } catch {
    return removed;
  }
  for (const { name, isDirectory } of entries) {
    if (!isDirectory || !name.startsWith("repgpt-")) continue;
    const dir = join(base, name);
    try {
      if (Deno.lstatSync(dir).uid !== Deno.uid()) continue;
    } catch {
      continue;
    }
    removed.push(...removeStaleMappings(dir));
  }
  return removed;
}

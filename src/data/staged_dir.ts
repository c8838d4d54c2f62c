/**
 * Replacing a dataset folder so that it is never half replaced. {@link stageDir} makes a fresh
 * sibling folder `OUT.prepare-<pid>` to write the new dataset into; {@link swapIn} then renames
 * the old folder aside (`OUT.replaced-<pid>`), renames the staged one into its place, moves the
 * old folder's other entries (anything that is not a shard of the dataset being replaced) into
 * the new one, and only then removes the old shards. A failure before the swap leaves the old
 * folder untouched and the staging folder is removed ({@link discardStaged}).
 *
 * A run killed during the two renames leaves no `OUT` and the old dataset in
 * `OUT.replaced-<pid>`: the next {@link stageDir} puts it back.
 */
import { basename, dirname, join } from "node:path";
import { isAlive, syncDir } from "../io/atomic.ts";

/** A staging folder and the folder it will replace. */
export interface StagedDir {
  /** The folder to replace, symlinks resolved (a linked dataset folder stays linked). */
  out: string;
  /** Where the new content is written. */
  staging: string;
}

/** Create the staging folder for `out` (which need not exist); clean up after killed runs. */
export async function stageDir(out: string): Promise<StagedDir> {
  const real = await realPathOrSelf(out);
  const parent = dirname(real);
  await Deno.mkdir(parent, { recursive: true });
  await recoverKilledRuns(real);
  const stat = await statOrNull(real);
  if (stat && !stat.isDirectory) throw new Error(`${out}: exists and is not a directory`);
  const staging = `${real}.prepare-${Deno.pid}`;
  await Deno.remove(staging, { recursive: true }).catch(() => {});
  await Deno.mkdir(staging, { mode: stat?.mode ? stat.mode & 0o7777 : undefined });
  return { out: real, staging };
}

/**
 * Put the staged folder in place of `out`. Entries of the old folder for which `replaced(name)`
 * is false are moved into the new one; the others are removed with the old folder, and their
 * names not present in the new folder are returned.
 */
export async function swapIn(
  { out, staging }: StagedDir,
  replaced: (name: string) => boolean,
): Promise<string[]> {
  const aside = `${out}.replaced-${Deno.pid}`;
  const hadOld = (await statOrNull(out)) !== null;
  if (hadOld) await Deno.rename(out, aside);
  try {
    await Deno.rename(staging, out);
  } catch (e) {
    if (hadOld) await Deno.rename(aside, out);
    throw new Error(`${out}: cannot move the new dataset into place: ${(e as Error).message}`);
  }
  await syncDir(dirname(out));
  if (!hadOld) return [];
  const fresh = new Set([...Deno.readDirSync(out)].map((e) => e.name));
  const gone: string[] = [];
  for (const entry of [...Deno.readDirSync(aside)]) {
    if (replaced(entry.name)) {
      if (!fresh.has(entry.name)) gone.push(entry.name);
    } else {
      await Deno.rename(join(aside, entry.name), join(out, entry.name));
    }
  }
  await Deno.remove(aside, { recursive: true });
  return gone.sort();
}

/** Remove the staging folder after a failure. */
export async function discardStaged({ staging }: StagedDir): Promise<void> {
  await Deno.remove(staging, { recursive: true }).catch(() => {});
}

/** Remove dead runs' staging folders; put back an old folder a killed swap left aside. */
async function recoverKilledRuns(out: string): Promise<void> {
  const pattern = new RegExp(`^${escapeRegExp(basename(out))}\\.(prepare|replaced)-(\\d+)$`);
  for (const entry of [...Deno.readDirSync(dirname(out))]) {
    const match = pattern.exec(entry.name);
    if (!entry.isDirectory || !match || isAlive(Number(match[2]))) continue;
    const path = join(dirname(out), entry.name);
    if (match[1] === "prepare") await Deno.remove(path, { recursive: true });
    else if ((await statOrNull(out)) === null) await Deno.rename(path, out);
  }
}

async function realPathOrSelf(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch {
    return path;
  }
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

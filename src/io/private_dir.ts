/**
 * Private folders under shared places such as /tmp: mode 0700, owned by this user, and a real
 * folder, not a symlink. A predictable name there can be planted in advance by anyone (a
 * symlink to somewhere of theirs or of ours, or their own folder), so what is found is checked
 * with lstat, which does not follow links, and refused unless it is exactly ours.
 */
import { basename, dirname } from "node:path";

/**
 * Why `path` is not a private folder of this user, as a phrase ("is a symlink to /x"), or
 * undefined when it is one. Does not follow symlinks.
 */
export function privateDirProblem(path: string): string | undefined {
  const st = Deno.lstatSync(path);
  if (st.isSymlink) return `is a symlink to ${Deno.readLinkSync(path)}`;
  if (!st.isDirectory) return "is not a folder";
  const uid = Deno.uid();
  if (uid !== null && st.uid !== uid) return `is owned by uid ${st.uid}, not by us (uid ${uid})`;
  const mode = (st.mode ?? 0) & 0o777;
  if (mode !== 0o700) return `has mode 0${mode.toString(8)}, not 0700`;
  return undefined;
}

/**
 * A private folder at `path`: made (0700) when missing, used when it is already ours and
 * private. When something else is there, a fresh private folder with a random name beside it
 * (mkdtemp) is returned instead and `warn` is told what was wrong and what is used.
 */
export function ensurePrivateDirSync(
  path: string,
  warn: (message: string) => void = console.warn,
): string {
  try {
    Deno.mkdirSync(path, { mode: 0o700 }); // never follows a symlink at `path`
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
  const problem = privateDirProblem(path);
  if (problem === undefined) return path;
  const fresh = Deno.makeTempDirSync({ dir: dirname(path), prefix: `${basename(path)}-` });
  Deno.chmodSync(fresh, 0o700);
  warn(`${path} ${problem}: not using it; using ${fresh} instead (remove ${path} to stop this)`);
  return fresh;
}

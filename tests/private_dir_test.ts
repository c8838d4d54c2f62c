/**
 * Private folders in shared places (the GPU runtime folder, socket folders): a planted symlink,
 * someone else's folder or a readable one is never used; a fresh private folder is, with a
 * message naming what was wrong.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { ensurePrivateDirSync } from "../src/io/private_dir.ts";

/** Runs `fn(base)` in a fresh temp folder standing in for /tmp, then removes it. */
async function inTemp(fn: (base: string) => void | Promise<void>): Promise<void> {
  const base = await Deno.makeTempDir({ prefix: "private_dir_test_" });
  try {
    await fn(base);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

/** Calls ensurePrivateDirSync and returns the folder and the warnings it gave. */
function ensure(path: string): { dir: string; warnings: string[] } {
  const warnings: string[] = [];
  const dir = ensurePrivateDirSync(path, (m) => warnings.push(m));
  return { dir, warnings };
}

/** `dir` is a real folder (not a link), ours, mode 0700, beside `path`, named after it. */
function assertFreshPrivate(dir: string, path: string): void {
  const st = Deno.lstatSync(dir);
  assert(st.isDirectory && !st.isSymlink, `${dir} is not a real folder`);
  assertEquals(st.uid, Deno.uid());
  assertEquals(st.mode! & 0o777, 0o700);
  assert(dir !== path && dir.startsWith(`${path}-`), `${dir} is not a fresh sibling of ${path}`);
}

Deno.test("private dir: made 0700 when missing, reused when already ours", () =>
  inTemp((base) => {
    const path = join(base, "repgpt-runtime-0");
    assertEquals(ensure(path), { dir: path, warnings: [] });
    assertEquals(Deno.lstatSync(path).mode! & 0o777, 0o700);
    assertEquals(ensure(path), { dir: path, warnings: [] });
  }));

Deno.test("private dir: a planted symlink is not followed", () =>
  inTemp((base) => {
    // The worst plant: a link to a private folder of ours, which a stat() would accept.
    const target = join(base, "ours");
    Deno.mkdirSync(target, { mode: 0o700 });
    const path = join(base, "repgpt-runtime-0");
    Deno.symlinkSync(target, path);
    const { dir, warnings } = ensure(path);
    assertFreshPrivate(dir, path);
    assertEquals(warnings.length, 1);
    assert(warnings[0].includes(`${path} is a symlink to ${target}`), warnings[0]);
    assert(warnings[0].includes(`using ${dir} instead`), warnings[0]);
    assert(Deno.lstatSync(path).isSymlink, "the planted link was left as it was");
    assertEquals([...Deno.readDirSync(target)], [], "nothing was made behind the link");
  }));

Deno.test("private dir: a folder others can read, or a file, is replaced by a fresh one", () =>
  inTemp((base) => {
    const open = join(base, "open");
    Deno.mkdirSync(open);
    Deno.chmodSync(open, 0o755);
    const a = ensure(open);
    assertFreshPrivate(a.dir, open);
    assert(a.warnings[0].includes(`${open} has mode 0755, not 0700`), a.warnings[0]);
    const file = join(base, "file");
    Deno.writeTextFileSync(file, "x");
    const b = ensure(file);
    assertFreshPrivate(b.dir, file);
    assert(b.warnings[0].includes(`${file} is not a folder`), b.warnings[0]);
    assertEquals(Deno.readTextFileSync(file), "x");
  }));

Deno.test({
  name: "private dir: a folder owned by another user is not used",
  ignore: Deno.uid() !== 0, // only root can give a folder away
  fn: () =>
    inTemp((base) => {
      const path = join(base, "repgpt-runtime-0");
      Deno.mkdirSync(path, { mode: 0o700 });
      Deno.chownSync(path, 4242, 4242);
      const { dir, warnings } = ensure(path);
      assertFreshPrivate(dir, path);
      assert(warnings[0].includes(`${path} is owned by uid 4242, not by us`), warnings[0]);
    }),
});

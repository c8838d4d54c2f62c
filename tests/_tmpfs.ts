/**
 * A small tmpfs for tests that need a real full disk (ENOSPC). Mounting needs root; where it
 * cannot mount, {@link canMountTmpfs} is false and says so, and those tests are skipped.
 */

/** Mount a tmpfs of `kib` KiB on a fresh temp dir, run `fn` on it, unmount. */
export async function withTmpfs<T>(kib: number, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "tmpfs_" });
  await command("mount", ["-t", "tmpfs", "-o", `size=${kib}k`, "tmpfs", dir]);
  try {
    return await fn(dir);
  } finally {
    await command("umount", [dir]);
    await Deno.remove(dir);
  }
}

/** Whether this process can mount a tmpfs (root, and not in a sandbox that forbids it). */
export async function canMountTmpfs(testFile: string): Promise<boolean> {
  const ok = Deno.uid() === 0 &&
    await withTmpfs(64, () => Promise.resolve(true)).catch(() => false);
  if (!ok) {
    console.error(
      `\n*** ${testFile}: disk-full tests SKIPPED: cannot mount a tmpfs (needs root) ***\n`,
    );
  }
  return ok;
}

async function command(cmd: string, args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" })
    .output();
  if (code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(stderr)}`);
}

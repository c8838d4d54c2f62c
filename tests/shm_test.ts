/**
 * The shared-memory transport leaves nothing behind: a rank's file has a name only while the
 * ranks set up, the rank folder goes at a normal exit and at Ctrl-C, and a stale file that a
 * crashed run left (its process gone) is removed at the next start, while a live one is kept.
 * Real rank processes under a private XDG_RUNTIME_DIR, where launch() makes its folder.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { outputWithin, plain, rankCommand } from "./_dist_rank.ts";

/** Every path under `dir`, recursively. */
function tree(dir: string): string[] {
  return [...Deno.readDirSync(dir)].flatMap((e) => {
    const path = join(dir, e.name);
    return e.isDirectory ? [path, ...tree(path)] : [path];
  });
}

async function withRuntime(body: (runtime: string) => Promise<void>): Promise<void> {
  const runtime = await Deno.makeTempDir({ prefix: "repgpt-shm-test-" });
  try {
    await body(runtime);
  } finally {
    await Deno.remove(runtime, { recursive: true });
  }
}

/** A pid that no process has now: a child that has exited. */
async function deadPid(): Promise<number> {
  const child = new Deno.Command("true").spawn();
  await child.status;
  return child.pid;
}

Deno.test("shm: a stale file of a dead process is removed at the next start, a live one kept", async () => {
  await withRuntime(async (runtime) => {
    const crashed = join(runtime, "repgpt-crashed");
    await Deno.mkdir(crashed, { mode: 0o700 });
    const stale = join(crashed, `shm.rank0.${await deadPid()}-12345.map`);
    // Ours (this test's process, with its real start time): a live job's file.
    const stat = await Deno.readTextFile(`/proc/${Deno.pid}/stat`);
    const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    const live = join(crashed, `shm.rank1.${Deno.pid}-${start}.map`);
    await Deno.writeFile(stale, new Uint8Array(4096), { mode: 0o600 });
    await Deno.writeFile(live, new Uint8Array(4096), { mode: 0o600 });
    const out = await Deno.makeTempDir({ dir: runtime, prefix: "results-" });
    const res = await outputWithin(
      rankCommand(["--nproc", "2", "--dist", "shm", "check", out, "1000"], {
        XDG_RUNTIME_DIR: runtime,
      }),
    );
    const stderr = plain(res.stderr);
    assertEquals(res.code, 0, stderr);
    assert(stderr.includes(`removed ${stale}: a stale shared-memory file`), stderr);
    const left = tree(runtime).filter((p) => !p.startsWith(out));
    assertEquals(
      left.sort(),
      [crashed, live].sort(),
      "the job's folder and the stale file are gone",
    );
  });
});

Deno.test("shm: files have no names once set up; Ctrl-C of the launcher leaves nothing", async () => {
  await withRuntime(async (runtime) => {
    const launcher = rankCommand(["--nproc", "2", "--dist", "shm", "loop"], {
      XDG_RUNTIME_DIR: runtime,
    }).spawn();
    let stdout = "";
    const reader = launcher.stdout.getReader();
    while (!/^\[rank 1\] iter 2$/m.test(stdout) || !/^iter 2$/m.test(stdout)) {
      const { value, done } = await reader.read();
      if (done) break;
      stdout += new TextDecoder().decode(value);
    }
    const during = tree(runtime);
    assertEquals(during.length, 1, `only the rank folder while running: ${during}`);
    launcher.kill("SIGINT");
    while (!(await reader.read()).done) { /* drain: the launcher must be able to write */ }
    await launcher.stderr.cancel();
    assert(!(await launcher.status).success);
    assertEquals(tree(runtime), [], "left after Ctrl-C");
  });
});

Deno.test("shm: kill -9 of a rank stops the job within the timeout and leaves nothing", async () => {
  await withRuntime(async (runtime) => {
    const launcher = rankCommand(["--nproc", "3", "--dist", "shm", "loop"], {
      XDG_RUNTIME_DIR: runtime,
      REPGPT_DIST_TIMEOUT: "5",
    }).spawn();
    let stdout = "";
    const reader = launcher.stdout.getReader();
    while (!/^\[rank 2\] iter 2$/m.test(stdout)) {
      const { value, done } = await reader.read();
      if (done) break;
      stdout += new TextDecoder().decode(value);
    }
    const pid = Number(stdout.match(/^\[rank 2\] rank 2\/3 local 2 pid (\d+)/m)?.[1]);
    assert(pid > 0, stdout);
    const killedAt = Date.now();
    Deno.kill(pid, "SIGKILL");
    while (!(await reader.read()).done) { /* drain */ }
    const stderr = plain(new Uint8Array(await new Response(launcher.stderr).arrayBuffer()));
    assertEquals((await launcher.status).code, 1);
    assert(Date.now() - killedAt < 5000, "the job outlived the timeout");
    assert(stderr.includes("rank 2 was killed by SIGKILL"), stderr);
    assertEquals(tree(runtime), [], "left after kill -9 of a rank");
  });
});

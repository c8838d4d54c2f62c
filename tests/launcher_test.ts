/** launch(): real rank processes, their output, failure propagation, signals, cleanup. */
import { assert, assertEquals } from "./_assert.ts";
import { outputWithin, plain, rankCommand } from "./_dist_rank.ts";
import { launch, selfCommand } from "../src/distributed/launcher.ts";

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** The pids and socket folder the ranks printed ("rank r/W local l pid P dir D"). */
function hello(stdout: string): { pids: number[]; dirs: string[] } {
  const lines = [...stdout.matchAll(/rank \d+\/\d+ local \d+ pid (\d+) dir (\S+)/g)];
  return { pids: lines.map((m) => Number(m[1])), dirs: lines.map((m) => m[2]) };
}

async function alive(pid: number): Promise<boolean> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => "");
  return stat !== "" && !/^\d+ \(.*\) Z/.test(stat);
}

Deno.test("launch: under deno run, ranks are this module run again with -A", () => {
  const [exe, run, allow, main] = selfCommand();
  assertEquals([exe, run, allow, main], [Deno.execPath(), "run", "-A", Deno.mainModule]);
});

Deno.test("launch: a program that cannot start fails the launch with code 1", async () => {
  assertEquals(await launch({ nproc: 2, command: ["/nonexistent/repgpt"], args: [] }), 1);
});

Deno.test("launch: the first failing rank fails the job, the rest stop, the folder goes", async () => {
  const res = await outputWithin(rankCommand(["--nproc", "3", "fail", "1"]));
  const stdout = plain(res.stdout), stderr = plain(res.stderr);
  assertEquals(res.code, 1, stderr);
  assert(stderr.includes("launch: rank 1 exited with code 3; stopped the other ranks"), stderr);
  // Rank 0 prints as is; the others' lines carry their rank.
  assert(/^rank 0\/3 local 0 /m.test(stdout), stdout);
  assert(/^\[rank 2\] rank 2\/3 local 2 /m.test(stdout), stdout);
  assert(/^\[rank 2\] iter 0$/m.test(stdout), stdout);
  const { pids, dirs } = hello(stdout);
  assertEquals(pids.length, 3);
  assertEquals(new Set(dirs).size, 1);
  assert(!(await exists(dirs[0])), `socket folder ${dirs[0]} was left behind`);
  for (const pid of pids) assert(!(await alive(pid)), `rank pid ${pid} still runs`);
});

Deno.test("launch: SIGINT to the launcher stops every rank and removes the folder", async () => {
  const launcher = rankCommand(["--nproc", "2", "loop"]).spawn();
  let stdout = "";
  const reader = launcher.stdout.getReader();
  while (!/^\[rank 1\] iter 2$/m.test(stdout) || !/^iter 2$/m.test(stdout)) {
    const { value, done } = await reader.read();
    if (done) break;
    stdout += new TextDecoder().decode(value);
  }
  const { pids, dirs } = hello(stdout);
  assertEquals(pids.length, 2, stdout);
  assert(await exists(dirs[0]));
  const sentAt = Date.now();
  launcher.kill("SIGINT");
  while (!(await reader.read()).done) { /* drain: the launcher must be able to write */ }
  const { code } = await launcher.status;
  const stderr = plain(new Uint8Array(await new Response(launcher.stderr).arrayBuffer()));
  assert(code !== 0, "launcher exited 0 after SIGINT");
  assert(stderr.includes("launch: launcher received SIGINT"), stderr);
  assert(Date.now() - sentAt < 15_000, "ranks took over 15 s to stop");
  assert(!(await exists(dirs[0])), `socket folder ${dirs[0]} was left behind`);
  for (const pid of pids) assert(!(await alive(pid)), `rank pid ${pid} still runs`);
});

Deno.test("launch: SIGKILL of the launcher stops every rank and removes the folder", async () => {
  const launcher = rankCommand(["--nproc", "2", "loop"]).spawn();
  let stdout = "";
  const reader = launcher.stdout.getReader();
  while (!/^\[rank 1\] iter 2$/m.test(stdout) || !/^iter 2$/m.test(stdout)) {
    const { value, done } = await reader.read();
    if (done) break;
    stdout += new TextDecoder().decode(value);
  }
  const { pids, dirs } = hello(stdout);
  assertEquals(pids.length, 2, stdout);
  assert(await exists(dirs[0]));
  launcher.kill("SIGKILL");
  assertEquals((await launcher.status).signal, "SIGKILL");
  // Rank 0 shares our stdout pipe: read it to the end so it can never block on a full pipe.
  const drained = (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })();
  const deadline = Date.now() + 10_000;
  const left = async () => [
    ...(await Promise.all(pids.map(async (p) => (await alive(p)) ? [`rank pid ${p}`] : []))).flat(),
    ...(await exists(dirs[0]) ? [`socket folder ${dirs[0]}`] : []),
  ];
  while ((await left()).length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assertEquals(await left(), [], "still there 10 s after the launcher was killed");
  await drained;
  await launcher.stderr.cancel();
});

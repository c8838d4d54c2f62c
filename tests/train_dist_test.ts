/**
 * Data-parallel training through real rank processes and both one-host all-reduces (shared
 * memory, the default, and the Unix-socket ring): 2 ranks at batch B match 1 rank at 2B over
 * the same tokens, all ranks hold identical
 * parameters (the trainer checks it at every checkpoint), only rank 0 writes, a
 * 2-rank run stopped with SIGINT resumes to the uninterrupted 2-rank losses bit for bit, and
 * no rank outlives a launcher killed with SIGKILL.
 */
import { join } from "node:path";
import { assert, assertClose, assertEquals } from "./_assert.ts";
import { runTrain, spawnTrain, tinyRunArgs, trainLosses, writeTokenData } from "./_train_run.ts";
import { listCheckpoints } from "../src/io/checkpoint.ts";

/**
 * Tolerance between 1 rank at 2B and 2 ranks at B: the same math, summed in a different
 * order (per-rank means then a mean of two, vs one mean over 2B rows): f32 rounding only.
 */
const RTOL = 1e-4;

Deno.test("dist: 2 ranks at B equal 1 rank at 2B, through shm and socket; only rank 0 writes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "train_dist_" });
  try {
    const data = await writeTokenData(join(dir, "data"));
    const one = join(dir, "one");
    await runTrain(tinyRunArgs(data, one, ["--batch-size", "2"]));
    const a = await trainLosses(one);
    // The losses must actually have moved, or the comparison says little.
    assert(a.get(12)! < a.get(1)! - 0.1, `loss did not fall: ${a.get(1)} -> ${a.get(12)}`);
    const two: Record<string, Map<number, number>> = {};
    for (const dist of ["shm", "socket"]) {
      const out = join(dir, dist);
      // Checkpoints every 3 steps (tinyRunArgs): at each, the ranks check that they agree.
      await runTrain(tinyRunArgs(data, out, ["--batch-size", "1", "--nproc", "2", "--dist", dist]));
      const b = two[dist] = await trainLosses(out);
      assertEquals([...b.keys()], [...a.keys()]);
      assertClose([...b.values()], [...a.values()], { rtol: RTOL, atol: 0, label: dist });
      const events = [...Deno.readDirSync(join(out, "tensorboard"))];
      assertEquals(events.length, 1, "one TensorBoard file (rank 0's)");
    }
    // The same sums in the same order: the transports agree bit for bit.
    assertEquals([...two.shm.entries()], [...two.socket.entries()]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dist: 4 ranks at B equal 1 rank at 4B through shared memory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "train_dist4_" });
  try {
    const data = await writeTokenData(join(dir, "data"));
    const [one, four] = [join(dir, "one"), join(dir, "four")];
    const short = ["--max-steps", "6"];
    await runTrain(tinyRunArgs(data, one, ["--batch-size", "4", ...short]));
    await runTrain(tinyRunArgs(data, four, ["--batch-size", "1", "--nproc", "4", ...short]));
    const [a, b] = [await trainLosses(one), await trainLosses(four)];
    assertEquals([...b.keys()], [...a.keys()]);
    assertClose([...b.values()], [...a.values()], { rtol: RTOL, atol: 0, label: "4 ranks" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dist: a 2-rank run stopped by SIGINT resumes bit for bit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "train_dist_resume_" });
  try {
    const data = await writeTokenData(join(dir, "data"));
    const args = (out: string, extra: string[] = []) =>
      tinyRunArgs(data, out, ["--batch-size", "1", "--nproc", "2", ...extra]);
    const straight = join(dir, "straight"), stopped = join(dir, "stopped");
    await runTrain(args(straight));
    const child = spawnTrain(args(stopped));
    const output = child.output();
    let exited = false;
    output.finally(() => exited = true);
    const deadline = Date.now() + 120_000;
    while (
      !exited && Date.now() < deadline &&
      listCheckpoints(join(stopped, "checkpoints")).length === 0
    ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!exited) child.kill("SIGINT");
    const status = await output;
    const text = new TextDecoder().decode(status.stdout) + new TextDecoder().decode(status.stderr);
    const last = listCheckpoints(join(stopped, "checkpoints")).at(-1)?.step;
    assert(last !== undefined, `no checkpoint before the run ended:\n${text}`);
    assert(status.code !== 0 || last === 12, text);
    await runTrain(args(stopped, ["--resume"]));
    assertEquals([...(await trainLosses(stopped)).entries()], [
      ...(await trainLosses(straight)).entries(),
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Pids of the live child processes of `pid` (Linux /proc). */
async function childPids(pid: number): Promise<number[]> {
  const pids: number[] = [];
  for await (const task of Deno.readDir(`/proc/${pid}/task`)) {
    const text = await Deno.readTextFile(`/proc/${pid}/task/${task.name}/children`);
    pids.push(...text.split(" ").filter((s) => s.trim()).map(Number));
  }
  return pids;
}

async function alive(pid: number): Promise<boolean> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => "");
  return stat !== "" && !/^\d+ \(.*\) Z/.test(stat); // a zombie has stopped
}

Deno.test("dist: SIGKILL of the --nproc launcher stops both ranks and removes the sockets", async () => {
  const dir = await Deno.makeTempDir({ prefix: "train_dist_kill_" });
  const runtime = join(dir, "runtime"); // the socket folder is made in XDG_RUNTIME_DIR
  await Deno.mkdir(runtime, { mode: 0o700 });
  try {
    const data = await writeTokenData(join(dir, "data"));
    const out = join(dir, "out");
    const launcher = spawnTrain(
      tinyRunArgs(data, out, ["--batch-size", "1", "--nproc", "2", "--max-steps", "100000"]),
      { XDG_RUNTIME_DIR: runtime },
    );
    // Read its output to the end, so rank 0 (which shares our pipes) never blocks on them.
    const output = Promise.all(
      [launcher.stdout, launcher.stderr].map((s) => new Response(s).text()),
    );
    const metrics = join(out, "metrics.jsonl");
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline && !(await Deno.readTextFile(metrics).catch(() => ""))) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const ranks = await childPids(launcher.pid);
    assertEquals(ranks.length, 2, `ranks of launcher ${launcher.pid}`);
    assertEquals([...Deno.readDirSync(runtime)].length, 1, "one socket folder while training");
    launcher.kill("SIGKILL");
    assertEquals((await launcher.status).signal, "SIGKILL");
    const left = async () => [
      ...(await Promise.all(ranks.map(async (p) => (await alive(p)) ? [`rank pid ${p}`] : [])))
        .flat(),
      ...[...Deno.readDirSync(runtime)].map((e) => join(runtime, e.name)),
    ];
    const killedAt = Date.now();
    while ((await left()).length > 0 && Date.now() - killedAt < 15_000) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const leftover = await left();
    // Orphans hold our pipes open: stop them before reading the output, then fail.
    for (const p of ranks) if (await alive(p)) Deno.kill(p, "SIGKILL");
    const [stdout, stderr] = await output;
    assertEquals(leftover, [], `still there 15 s after SIGKILL:\n${stdout}${stderr}`);
    assert(/the launcher \(pid \d+\) is gone; stopping/.test(stderr), stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

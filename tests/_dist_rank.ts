/**
 * A rank program for the dist tests (real processes, real sockets):
 *
 *   deno run -A tests/_dist_rank.ts [--nproc N] [--dist shm|socket|mpi] [--chunk BYTES] <mode> ...
 *
 *   check <outDir> <n>  all-reduce sum and mean of rankData(rank, n), broadcast from the last
 *                       rank, barrier, then the same on host buffers (comm.hostBuffer: in place
 *                       for shm); writes the results to <outDir>/rank<r>.<what>.bin, what being
 *                       sum, mean, bcast, host-sum, host-mean, host-bcast
 *   loop                all-reduces 64K floats forever, printing "iter <k>" (fault tests)
 *   fail <rank>         like loop, but <rank> exits with code 3 after its 3rd iteration
 *   mismatch            rank r all-reduces 10 + r floats: a programming error to report
 *   close-pending       rank 1 idles 3 s; rank 0 closes while its all-reduce waits for rank 1,
 *                       printing how that all-reduce ended and how long close() took
 *   busy-main           rank 0 starts an all-reduce, then blocks its main thread for 3 s (as
 *                       a GPU wait does); every rank prints "finished at <ms>" when done
 *
 * Also exports the test data and the ring's exact summation order, for the tests to check bits.
 */
import { parseArgs } from "node:util";
import { createCommunicator, parseDist, sharedFloat32 } from "../src/distributed/communicator.ts";
import { launch, launchPlan } from "../src/distributed/launcher.ts";

/** Rank r's input: values spread over 7 decades, so the summation order shows in the bits. */
export function rankData(rank: number, n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = Math.sin(i * 12.9898 + rank * 78.233) * 10 ** ((i + rank) % 7 - 3);
  }
  return x;
}

/**
 * What the ring computes for `inputs` (one array per rank): segment s of W is summed in ring
 * order starting at rank s, ((x_s + x_{s+1}) + ...), each partial rounded to f32; the mean
 * multiplies the sum by 1/W.
 */
export function ringReference(inputs: Float32Array[], mean: boolean): Float32Array {
  const W = inputs.length, n = inputs[0].length;
  const out = new Float32Array(n);
  for (let s = 0; s < W; s++) {
    for (let i = Math.floor((s * n) / W); i < Math.floor(((s + 1) * n) / W); i++) {
      let acc = inputs[s][i];
      for (let j = 1; j < W; j++) acc = Math.fround(acc + inputs[(s + j) % W][i]);
      out[i] = mean ? Math.fround(acc * (1 / W)) : acc;
    }
  }
  return out;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: {
      nproc: { type: "string" },
      dist: { type: "string", default: "socket" },
      chunk: { type: "string" },
    },
    allowPositionals: true,
  });
  const plan = launchPlan(values.nproc === undefined ? undefined : Number(values.nproc));
  if (plan) Deno.exit(await launch({ ...plan }));

  const comm = await createCommunicator({
    dist: parseDist(values.dist!),
    chunkBytes: values.chunk === undefined ? undefined : Number(values.chunk),
  });
  const [mode, ...rest] = positionals;
  const dir = Deno.env.get("REPGPT_SOCKET_DIR");
  console.log(
    `rank ${comm.rank}/${comm.worldSize} local ${comm.localRank} pid ${Deno.pid} dir ${dir}`,
  );
  if (mode === "check") {
    const [outDir, nText] = rest;
    const n = Number(nText);
    const save = (what: string, a: Float32Array) =>
      Deno.writeFile(`${outDir}/rank${comm.rank}.${what}.bin`, new Uint8Array(a.slice().buffer));
    // Sum on an ordinary array (copied through shared memory), mean on a shared one.
    const sum = rankData(comm.rank, n);
    const mean = sharedFloat32(n);
    mean.set(rankData(comm.rank, n));
    const bcast = comm.rank === comm.worldSize - 1 ? rankData(99, n) : new Float32Array(n);
    // Issued together, without awaiting: they must still run in order.
    await Promise.all([
      comm.allReduceSum(sum),
      comm.allReduceMean(mean),
      comm.broadcast(bcast, comm.worldSize - 1),
      comm.barrier(),
    ]);
    // Host buffers: subarrays of one, so that collectives start inside a region too.
    const host = comm.hostBuffer(3 * n + 5);
    const [hSum, hMean, hBcast] = [0, 1, 2].map((k) => host.subarray(k * n + 1, (k + 1) * n + 1));
    hSum.set(rankData(comm.rank, n));
    hMean.set(rankData(comm.rank, n));
    if (comm.rank === comm.worldSize - 1) hBcast.set(rankData(99, n));
    await Promise.all([
      comm.allReduceSum(hSum),
      comm.allReduceMean(hMean),
      comm.broadcast(hBcast, comm.worldSize - 1),
    ]);
    await Promise.all([
      save("sum", sum),
      save("mean", mean),
      save("bcast", bcast),
      save("host-sum", hSum),
      save("host-mean", hMean),
      save("host-bcast", hBcast),
    ]);
  } else if (mode === "loop" || mode === "fail") {
    const data = comm.hostBuffer(1 << 16);
    for (let k = 0;; k++) {
      if (mode === "fail" && k === 3 && comm.rank === Number(rest[0])) Deno.exit(3);
      await comm.allReduceMean(data);
      console.log(`iter ${k}`);
    }
  } else if (mode === "close-pending") {
    if (comm.rank === 1) await new Promise((resolve) => setTimeout(resolve, 3000));
    else {
      const pending = comm.allReduceSum(new Float32Array(4)).then(
        () => "resolved",
        (e) => `rejected: ${e.message}`,
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      const t0 = Date.now();
      await comm.close();
      console.log(`close took ${Date.now() - t0} ms; the all-reduce ${await pending}`);
    }
  } else if (mode === "busy-main") {
    const pending = comm.allReduceSum(sharedFloat32(1 << 16));
    if (comm.rank === 0) {
      const until = Date.now() + 3000;
      while (Date.now() < until) { /* the main thread is stuck, the Worker is not */ }
      console.log(`main thread free at ${Date.now()}`);
    }
    await pending;
    console.log(`finished at ${Date.now()}`);
  } else if (mode === "mismatch") {
    await comm.allReduceSum(new Float32Array(10 + comm.rank));
  } else {
    throw new Error(`unknown mode "${mode}"`);
  }
  await comm.close(); // a second close() (close-pending) must be harmless
}

/** Root of the repository, where the rank programs run. */
export const REPO = new URL("..", import.meta.url).pathname;

/** `deno run -A tests/_dist_rank.ts ...args`, ready to spawn from a test. */
export function rankCommand(args: string[], env: Record<string, string> = {}): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tests/_dist_rank.ts", ...args],
    cwd: REPO,
    env,
    stdout: "piped",
    stderr: "piped",
  });
}

/**
 * Runs `cmd` to the end like `output()`, but sends SIGTERM after `limitMs` so that a hang
 * fails the test instead of stalling the suite (a launcher passes SIGTERM on to its ranks).
 */
export async function outputWithin(
  cmd: Deno.Command,
  limitMs = 60_000,
): Promise<Deno.CommandOutput> {
  const child = cmd.spawn();
  const timer = setTimeout(() => child.kill("SIGTERM"), limitMs);
  try {
    return await child.output();
  } finally {
    clearTimeout(timer);
  }
}

/** Text without ANSI colour codes (Deno colours uncaught errors). */
export function plain(bytes: Uint8Array): string {
  // deno-lint-ignore no-control-regex
  return new TextDecoder().decode(bytes).replace(/\x1b\[[0-9;]*m/g, "");
}

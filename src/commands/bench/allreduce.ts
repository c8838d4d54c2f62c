/**
 * `deno task bench allreduce [--min-mb 1] [--max-mb 512] [--ranks 2,4] [--chunk-kib 4096]`:
 * every one-host transport side by side in the same rank processes (started by launch()):
 * the shared-memory all-reduce (on host buffers, in place) and the Unix-socket ring, each as
 * bus bandwidth (algbw * 2(W-1)/W, as nccl-tests define it), beside single-thread memcpy
 * bandwidth (rank 0 copying as many bytes while the others wait), at sizes doubling from min-mb
 * to max-mb MiB. The three are timed in turn at every repetition, so that load from other work
 * hits them alike; medians.
 */
import { parseArgs } from "node:util";
import { launch } from "../../distributed/launcher.ts";
import { LAUNCHER_PID_ENV } from "../../distributed/lifeline.ts";
import { createCommunicator } from "../../distributed/communicator.ts";

const MiB = 1 << 20;

/** Repetitions for one size: more for small sizes, 3 at the top. */
function repsFor(bytes: number): number {
  return Math.max(3, Math.min(20, Math.floor((512 * MiB) / bytes)));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function sizes(minMb: number, maxMb: number): number[] {
  const out: number[] = [];
  for (let mb = minMb; mb <= maxMb; mb *= 2) out.push(mb * MiB);
  return out;
}

const FLAGS = {
  "max-mb": { type: "string", default: "512" },
  "min-mb": { type: "string", default: "1" },
  "chunk-kib": { type: "string", default: "4096" },
  ranks: { type: "string", default: "2,4" },
} as const;

/** Medians for one size. */
interface Row {
  bytes: number;
  reps: number;
  shmMs: number;
  socketMs: number;
  memcpyMs: number;
}

/** Entry point of `deno task bench allreduce`. */
export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: FLAGS });
  const [minMb, maxMb, chunkKib] = [values["min-mb"], values["max-mb"], values["chunk-kib"]];
  for (const [flag, v] of [["min-mb", minMb], ["max-mb", maxMb], ["chunk-kib", chunkKib]]) {
    if (!(Number(v) >= 1)) throw new Error(`--${flag} must be a number >= 1, got "${v}"`);
  }
  const rankCounts = values.ranks.split(",").map(Number);
  if (!rankCounts.every((w) => Number.isInteger(w) && w >= 2)) {
    throw new Error(`--ranks must list integers >= 2, got "${values.ranks}"`);
  }
  console.log(
    `all-reduce (sum) bus bandwidth, GB/s: shm (in place on host buffers) and the socket ring ` +
      `(${chunkKib} KiB chunks), beside single-thread memcpy GB/s, timed in turn; medians.`,
  );
  console.log(
    "ranks      size  reps |   shm ms  busbw | socket ms  busbw | memcpy | shm/socket  shm/memcpy",
  );
  const gbps = (bytes: number, ms: number) => bytes / (ms / 1000) / 1e9;
  for (const W of rankCounts) {
    const rows = await runRanks(W, ["--min-mb", minMb, "--max-mb", maxMb, "--chunk-kib", chunkKib]);
    for (const row of rows) {
      const bus = (ms: number) => gbps(row.bytes, ms) * (2 * (W - 1)) / W;
      const shm = bus(row.shmMs),
        socket = bus(row.socketMs),
        memcpy = gbps(row.bytes, row.memcpyMs);
      console.log(
        [
          `${W}`.padStart(5),
          `${row.bytes / MiB} MiB`.padStart(9),
          `${row.reps}`.padStart(5),
          "|",
          row.shmMs.toFixed(1).padStart(8),
          shm.toFixed(2).padStart(6),
          "|",
          row.socketMs.toFixed(1).padStart(9),
          socket.toFixed(2).padStart(6),
          "|",
          memcpy.toFixed(2).padStart(6),
          "|",
          `${(shm / socket).toFixed(1)}x`.padStart(10),
          `${(100 * shm / memcpy).toFixed(0)}%`.padStart(11),
        ].join(" "),
      );
    }
  }
}

/** Starts `nproc` ranks of this module; rank 0 writes its rows to a file we read back. */
async function runRanks(nproc: number, flags: string[]): Promise<Row[]> {
  const out = await Deno.makeTempFile({ prefix: "repgpt-bench-" });
  try {
    const code = await launch({
      nproc,
      command: [Deno.execPath(), "run", "-A", new URL(import.meta.url).pathname],
      args: ["--as-rank", out, ...flags],
    });
    if (code !== 0) throw new Error(`allreduce bench: the run with ${nproc} ranks failed`);
    return JSON.parse(await Deno.readTextFile(out));
  } finally {
    await Deno.remove(out);
  }
}

/** A rank: per size and repetition, times shm, the socket ring, then rank 0's memcpy. */
async function rankMain(outPath: string, args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: FLAGS });
  const shm = await createCommunicator({ dist: "shm" });
  // One lifeline (stdin watch) per process: the second communicator goes without.
  const env = { ...Deno.env.toObject(), [LAUNCHER_PID_ENV]: undefined };
  const chunkBytes = Number(values["chunk-kib"]) * 1024;
  const socket = await createCommunicator({ dist: "socket", chunkBytes, env });
  const timed = async (body: () => Promise<unknown> | undefined) => {
    await shm.barrier();
    const t0 = performance.now();
    await body();
    return performance.now() - t0;
  };
  const rows: Row[] = [];
  for (const bytes of sizes(Number(values["min-mb"]), Number(values["max-mb"]))) {
    const onShm = shm.hostBuffer(bytes / 4).fill(shm.rank + 1);
    const onSocket = socket.hostBuffer(bytes / 4).fill(shm.rank + 1);
    const [src, dst] = shm.rank === 0 ? [new Uint8Array(bytes).fill(1), new Uint8Array(bytes)] : [];
    await Promise.all([shm.allReduceSum(onShm), socket.allReduceSum(onSocket)]); // warm-up
    const reps = repsFor(bytes);
    const times = { shm: [] as number[], socket: [] as number[], memcpy: [] as number[] };
    for (let i = 0; i < reps; i++) {
      times.shm.push(await timed(() => shm.allReduceSum(onShm)));
      times.socket.push(await timed(() => socket.allReduceSum(onSocket)));
      times.memcpy.push(await timed(() => void dst?.set(src!)));
    }
    rows.push({
      bytes,
      reps,
      shmMs: median(times.shm),
      socketMs: median(times.socket),
      memcpyMs: median(times.memcpy),
    });
  }
  if (shm.rank === 0) await Deno.writeTextFile(outPath, JSON.stringify(rows));
  await socket.close();
  await shm.close();
}

if (import.meta.main) {
  const [flag, out, ...rest] = Deno.args;
  if (flag === "--as-rank") await rankMain(out, rest);
  else await main(Deno.args);
}

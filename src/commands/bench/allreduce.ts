/**
 * `deno task bench allreduce [--min-mb 1] [--max-mb 512] [--ranks 2,4] [--chunk-kib 4096]`:
 * ring all-reduce bus bandwidth (algbw * 2(W-1)/W, as nccl-tests define it) at sizes doubling
 * from min-mb to max-mb MiB, beside raw Unix-socket throughput between ranks 0 and 1 (1 MiB
 * writes, one direction and both at once, the same bytes per direction), timed in turn with the
 * ring in the same processes so that load from other work hits both alike. Real rank processes
 * started by launch(); medians over the repetitions.
 */
import { parseArgs } from "node:util";
import { launch } from "../../distributed/launcher.ts";
import { createCommunicator, sharedFloat32 } from "../../distributed/communicator.ts";

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

/** Medians for one size: the ring all-reduce and raw transfers of as many bytes per direction. */
interface Row {
  bytes: number;
  reps: number;
  ringMs: number;
  oneWayMs: number;
  bothWaysMs: number;
  bothWaysHotMs: number;
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
    `ring all-reduce (sum, ${chunkKib} KiB chunks) vs raw Unix socket between ranks 0 and 1, ` +
      "1 MiB writes, the same bytes per direction, timed in turn with the ring; medians.\n" +
      "busbw = algbw * 2(W-1)/W. Raw GB/s are per direction; 1-way and 2-way walk buffers as " +
      "large as the data (like the ring), 2-way hot reuses 1 MiB buffers (cache-resident).",
  );
  console.log(
    "ranks      size  reps   ring ms  algbw  busbw |  1-way  2-way  2-way hot |" +
      " busbw/2-way  /2-way hot  /1-way",
  );
  const gbps = (bytes: number, ms: number) => bytes / (ms / 1000) / 1e9;
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  for (const W of rankCounts) {
    const rows = await runRanks(W, ["--min-mb", minMb, "--max-mb", maxMb, "--chunk-kib", chunkKib]);
    for (const row of rows) {
      const algbw = gbps(row.bytes, row.ringMs), busbw = algbw * (2 * (W - 1)) / W;
      const one = gbps(row.bytes, row.oneWayMs), both = gbps(row.bytes, row.bothWaysMs);
      const hot = gbps(row.bytes, row.bothWaysHotMs);
      console.log(
        [
          `${W}`.padStart(5),
          `${row.bytes / MiB} MiB`.padStart(9),
          `${row.reps}`.padStart(5),
          row.ringMs.toFixed(1).padStart(9),
          algbw.toFixed(2).padStart(6),
          busbw.toFixed(2).padStart(6),
          "|",
          one.toFixed(2).padStart(6),
          both.toFixed(2).padStart(6),
          hot.toFixed(2).padStart(10),
          "|",
          pct(busbw / both).padStart(12),
          pct(busbw / hot).padStart(11),
          pct(busbw / one).padStart(7),
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

/** A rank: per size and repetition, times raw one-way, raw both-ways, then the ring. */
async function rankMain(outPath: string, args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: FLAGS });
  const comm = await createCommunicator({ chunkBytes: Number(values["chunk-kib"]) * 1024 });
  const raw = await RawPair.open(
    comm.rank,
    Deno.env.get("REPGPT_SOCKET_DIR")!,
    () => comm.barrier(),
  );
  const timed = async (body: () => Promise<unknown> | undefined) => {
    await comm.barrier();
    const t0 = performance.now();
    await body();
    return performance.now() - t0;
  };
  const rows: Row[] = [];
  for (const bytes of sizes(Number(values["min-mb"]), Number(values["max-mb"]))) {
    const data = sharedFloat32(bytes / 4).fill(comm.rank + 1);
    await comm.allReduceSum(data); // warm-up
    const reps = repsFor(bytes);
    const [src, dst] = raw ? [new Uint8Array(bytes), new Uint8Array(bytes)] : [];
    const [hotSrc, hotDst] = [new Uint8Array(MiB), new Uint8Array(MiB)];
    const ring = [], oneWay = [], bothWays = [], bothWaysHot = [];
    for (let i = 0; i < reps; i++) {
      oneWay.push(await timed(() => raw?.oneWay(bytes, src!, dst!)));
      bothWays.push(await timed(() => raw?.bothWays(bytes, src!, dst!)));
      bothWaysHot.push(await timed(() => raw?.bothWays(bytes, hotSrc, hotDst)));
      ring.push(await timed(() => comm.allReduceSum(data)));
    }
    rows.push({
      bytes,
      reps,
      ringMs: median(ring),
      oneWayMs: median(oneWay),
      bothWaysMs: median(bothWays),
      bothWaysHotMs: median(bothWaysHot),
    });
  }
  if (comm.rank === 0) await Deno.writeTextFile(outPath, JSON.stringify(rows));
  raw?.close();
  await comm.close();
}

/**
 * A plain Unix-socket connection between ranks 0 and 1. Transfers walk a send and a receive
 * buffer in 1 MiB reads and writes: buffers as large as the transfer touch as much memory as the
 * ring does; 1 MiB buffers stay in cache (the best case).
 */
class RawPair {
  private constructor(private rank: number, private conn: Deno.Conn) {}

  /** Connects ranks 0 and 1 (undefined on other ranks; every rank must call it). */
  static async open(
    rank: number,
    dir: string,
    barrier: () => Promise<void>,
  ): Promise<RawPair | undefined> {
    const path = `${dir}/raw.sock`;
    const listener = rank === 0 ? Deno.listen({ transport: "unix", path }) : undefined;
    await barrier();
    if (rank > 1) return undefined;
    const conn = listener
      ? await listener.accept()
      : await Deno.connect({ transport: "unix", path });
    listener?.close();
    return new RawPair(rank, conn);
  }

  /** Rank 1 sends `bytes` to rank 0. */
  oneWay(bytes: number, src: Uint8Array, dst: Uint8Array): Promise<void> {
    return this.rank === 0 ? this.#recv(bytes, dst) : this.#send(bytes, src);
  }

  /** Both send `bytes` and receive `bytes` at once. */
  async bothWays(bytes: number, src: Uint8Array, dst: Uint8Array): Promise<void> {
    await Promise.all([this.#send(bytes, src), this.#recv(bytes, dst)]);
  }

  close(): void {
    this.conn.close();
  }

  async #send(bytes: number, src: Uint8Array): Promise<void> {
    for (let done = 0; done < bytes;) done += await this.conn.write(step(src, done, bytes));
  }

  async #recv(bytes: number, dst: Uint8Array): Promise<void> {
    for (let done = 0; done < bytes;) {
      const n = await this.conn.read(step(dst, done, bytes));
      if (n === null) throw new Error("raw socket closed early");
      done += n;
    }
  }
}

/** The view of `buf` (a multiple of 1 MiB long) for the transfer's next up-to-1-MiB step. */
function step(buf: Uint8Array, done: number, bytes: number): Uint8Array {
  const at = done % buf.length;
  return buf.subarray(at, at + Math.min(MiB - (at % MiB), bytes - done));
}

if (import.meta.main) {
  const [flag, out, ...rest] = Deno.args;
  if (flag === "--as-rank") await rankMain(out, rest);
  else await main(Deno.args);
}

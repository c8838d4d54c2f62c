/**
 * Worker of the shared-memory transport (shm.ts): it owns the control ring (Unix sockets, for
 * barriers and failure detection, _ring.ts) and runs the collectives over the ranks' mapped
 * files, so they keep moving while the main thread blocks on the GPU.
 *
 * All-reduce of n floats, split into W segments as the socket ring splits them: after a barrier
 * (every rank's data is in its file), rank r sums segment r of every rank's file into its own,
 * in ring order starting at itself, ((x_r + x_r+1) + x_r+2) + ..., with WebAssembly SIMD
 * (_simd_sum.ts): the same bits as the socket ring. After a second barrier, every rank copies
 * the other segments from their owners' files; a third keeps anyone from overwriting its file
 * while a peer still copies from it. Data outside the files goes through each rank's staging
 * area in rounds, segment s of a round in part s of the staging area.
 */
/// <reference lib="deno.worker" />
import { FIRST_SYNC_OP, Ring, type RingOptions, scale } from "./_ring.ts";
import type { WorkerReply } from "./_worker_channel.ts";
import { closeFile, createFile, mapFile, openFile, resizeFile } from "./mmap.ts";
import { SliceSum } from "./_simd_sum.ts";
import { findMapping, mappingName, removeStaleMappings } from "./shm_files.ts";

/** A part of this rank's file: a region made by hostBuffer(), or the staging area. */
export interface FileRegion {
  offset: number;
  bytes: number;
}

/** Where a collective's data is: floats [start, start + count) of a region, or an array. */
export type Place =
  | { region: FileRegion; start: number; count: number }
  | { data: Float32Array };

/** Main thread to worker; `data` in a Place views a SharedArrayBuffer. */
export type ShmRequest =
  | {
    type: "connect";
    id: number;
    dir: string;
    rank: number;
    worldSize: number;
    stagingBytes: number;
    connectTimeoutMs: number;
    options: RingOptions;
  }
  | { type: "allReduce"; id: number; place: Place; mean: boolean }
  | { type: "broadcast"; id: number; place: Place; root: number }
  | { type: "close"; id: number };

/** The reply to "connect": this rank's file, open as `fd`. */
export interface ConnectReply extends WorkerReply {
  fd: number;
}

const OP_SETUP = FIRST_SYNC_OP, OP_SUM = OP_SETUP + 1, OP_MEAN = OP_SETUP + 2;
const OP_BROADCAST = OP_SETUP + 3;
/** The sync argument of collectives through the staging area. */
const STAGED = 0xffffffff;

/** The ranks' files, mapped, and the collectives over them. */
class SharedFiles {
  /** Whole-region mappings as floats, by `${rank}:${offset}:${bytes}`. */
  #views = new Map<string, Float32Array>();
  /** Summers of this rank's segment, by `${offset}:${bytes}`. */
  #sums = new Map<string, SliceSum>();
  readonly staging: FileRegion;

  constructor(
    private ring: Ring,
    private fds: number[],
    stagingBytes: number,
  ) {
    this.staging = { offset: 0, bytes: stagingBytes };
  }

  get rank(): number {
    return this.ring.rank;
  }

  get worldSize(): number {
    return this.ring.worldSize;
  }

  async allReduce(place: Place, mean: boolean): Promise<void> {
    const W = this.worldSize, r = this.rank, op = mean ? OP_MEAN : OP_SUM;
    if ("region" in place) {
      const { region, start, count } = place;
      const [lo, hi] = bounds(r, count, W);
      await this.ring.sync(op, syncArg(region, start), count);
      this.#sumInto(region, start + lo, hi - lo, mean);
      await this.ring.sync(op, syncArg(region, start), count);
      const own = this.#view(r, region);
      for (let q = 0; q < W; q++) {
        const [a, b] = bounds(q, count, W);
        if (q !== r) own.set(this.#view(q, region).subarray(start + a, start + b), start + a);
      }
      return await this.ring.sync(op, syncArg(region, start), count);
    }
    // Rounds: segment s's k-th part goes through part s of the staging areas.
    const data = place.data, n = data.length;
    const part = Math.floor(this.staging.bytes / 4 / W / 16) * 16;
    const longest = Math.ceil(n / W);
    const own = this.#view(r, this.staging);
    for (let k = 0; k === 0 || k * part < longest; k++) {
      const piece = (s: number) => {
        const [a, b] = bounds(s, n, W);
        const from = Math.min(b, a + k * part);
        return [from, Math.min(b, from + part)];
      };
      for (let s = 0; s < W; s++) {
        const [a, b] = piece(s);
        own.set(data.subarray(a, b), s * part);
      }
      await this.ring.sync(op, STAGED, n);
      const [a, b] = piece(r);
      this.#sumInto(this.staging, r * part, b - a, mean);
      await this.ring.sync(op, STAGED, n);
      for (let q = 0; q < W; q++) {
        const [a, b] = piece(q);
        data.set(this.#view(q, this.staging).subarray(q * part, q * part + b - a), a);
      }
      await this.ring.sync(op, STAGED, n);
    }
  }

  async broadcast(place: Place, root: number): Promise<void> {
    if (!(root >= 0 && root < this.worldSize)) {
      throw new Error(`broadcast root ${root} is not a rank of ${this.worldSize}`);
    }
    const arg = "region" in place ? syncArg(place.region, place.start) : STAGED;
    if ("region" in place) {
      const { region, start, count } = place;
      await this.ring.sync(OP_BROADCAST, arg, count);
      if (this.rank !== root) {
        const from = this.#view(root, region).subarray(start, start + count);
        this.#view(this.rank, region).set(from, start);
      }
      return await this.ring.sync(OP_BROADCAST, arg, count);
    }
    const data = place.data, chunk = this.staging.bytes / 4;
    for (let at = 0; at === 0 || at < data.length; at += chunk) {
      const piece = data.subarray(at, at + chunk);
      if (this.rank === root) this.#view(root, this.staging).set(piece);
      await this.ring.sync(OP_BROADCAST, arg, data.length);
      if (this.rank !== root) piece.set(this.#view(root, this.staging).subarray(0, piece.length));
      await this.ring.sync(OP_BROADCAST, arg, data.length);
    }
  }

  /** Floats [at, at + count) of `region`: every rank's summed into this rank's, ring order. */
  #sumInto(region: FileRegion, at: number, count: number, mean: boolean): void {
    if (count === 0) return;
    const W = this.worldSize, r = this.rank, offset = region.offset + 4 * at;
    const key = `${offset}:${4 * count}`;
    let sum = this.#sums.get(key);
    if (!sum) {
      const order = Array.from({ length: W }, (_, j) => (r + j) % W);
      const slices = order.map((q) => ({ fd: this.fds[q], offset, bytes: 4 * count }));
      sum = new SliceSum(slices, `the ranks' shared files`);
      this.#sums.set(key, sum);
    }
    // A power-of-two factor multiplies exactly in f32 too: fused into the last add.
    const exact = (W & (W - 1)) === 0;
    sum.sum(mean && exact ? 1 / W : undefined);
    if (mean && !exact) scale(this.#view(r, region).subarray(at, at + count), 1 / W);
  }

  /** Rank q's `region` as floats (mapped on first use, after a barrier: the file is long enough). */
  #view(q: number, region: FileRegion): Float32Array {
    const key = `${q}:${region.offset}:${region.bytes}`;
    let view = this.#views.get(key);
    if (!view) {
      const what = `rank ${q}'s shared file`;
      view = new Float32Array(mapFile(this.fds[q], region.offset, region.bytes, what).buffer);
      this.#views.set(key, view);
    }
    return view;
  }

  close(): void {
    this.ring.close();
    for (const fd of this.fds) closeFile(fd);
    this.fds = [];
  }
}

/** Floats [floor(s*n/W), floor((s+1)*n/W)): segment s, as the socket ring splits data. */
function bounds(s: number, n: number, W: number): [number, number] {
  return [Math.floor((s * n) / W), Math.floor(((s + 1) * n) / W)];
}

/** What ranks check they agree on, besides the op and length: where the data is. */
function syncArg(region: FileRegion, start: number): number {
  return (region.offset / 65536 + start) >>> 0;
}

/**
 * Creates this rank's file (after removing its stale ones), waits for every rank to have made
 * its own, opens them all, and once every rank has opened every file removes its own name: from
 * then on the files have no names, and the kernel frees them when the last rank exits.
 */
async function connect(req: Extract<ShmRequest, { type: "connect" }>): Promise<ConnectReply> {
  const { dir, rank, worldSize } = req;
  const ring = await Ring.connect(dir, rank, worldSize, req.connectTimeoutMs, req.options);
  removeStaleMappings(dir);
  const path = `${dir}/${mappingName(rank)}`;
  const fds: number[] = [];
  try {
    fds[rank] = createFile(path);
    resizeFile(fds[rank], req.stagingBytes, path);
    await ring.sync(OP_SETUP, 0, 0, true);
    for (let q = 0; q < worldSize; q++) if (q !== rank) fds[q] = openFile(findMapping(dir, q));
    await ring.sync(OP_SETUP, 1, 0, true);
  } catch (e) {
    ring.close();
    fds.forEach(closeFile);
    throw e;
  } finally {
    Deno.removeSync(path);
  }
  files = new SharedFiles(ring, fds, req.stagingBytes);
  return { id: req.id, fd: fds[rank] };
}

let files: SharedFiles | undefined;
let queue = Promise.resolve();

async function serve(req: ShmRequest): Promise<WorkerReply> {
  if (req.type === "connect") return await connect(req);
  if (req.type !== "close") {
    if (!files) throw new Error("shared-memory transport used before it connected");
    if (req.type === "allReduce") await files.allReduce(req.place, req.mean);
    else await files.broadcast(req.place, req.root);
  }
  return { id: req.id };
}

self.onmessage = (e: MessageEvent<ShmRequest>) => {
  const req = e.data;
  // Close at once rather than in turn: a collective stuck on a hung peer fails now, not later.
  if (req.type === "close") files?.close();
  queue = queue.then(async () => {
    let reply: WorkerReply;
    try {
      reply = await serve(req);
    } catch (err) {
      reply = { id: req.id, error: err instanceof Error ? err.message : String(err) };
    }
    self.postMessage(reply);
  });
};

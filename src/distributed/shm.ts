/**
 * All-reduce through shared memory between the ranks of one host (`--dist shm`). Each rank's
 * data lives in a file of the job's rank folder (mode 0600), mapped by every rank (mmap.ts), and
 * the ranks sum each other's slices directly (_shm_worker.ts, in a Worker so that collectives
 * keep moving while the main thread blocks on the GPU). A ring of Unix sockets carries only
 * barriers, so a rank that dies or hangs still fails the others, naming it, within
 * REPGPT_DIST_TIMEOUT, as with the socket ring. The results equal the socket ring's bit for bit.
 *
 * Arrays from {@link ShmCommunicator.hostBuffer} are reduced in place, without a copy; any other
 * array goes through a staging area in rounds (copied in and out).
 */
import { type Communicator, sharedFloat32, type TransportConfig } from "./communicator.ts";
import type { ConnectReply, FileRegion, Place, ShmRequest } from "./_shm_worker.ts";
import { WorkerChannel } from "./_worker_channel.ts";
import { closeFile, MAP_ALIGN, mapFile, resizeFile } from "./mmap.ts";
import { removeStaleMappingsUnder } from "./shm_files.ts";
import { dirname } from "node:path";

/** What {@link ShmCommunicator.create} needs. */
export interface ShmConfig extends TransportConfig {
  /** Bytes of each rank's staging area, for arrays that are not host buffers. */
  stagingBytes: number;
}

/** Shared-memory collectives between the ranks of one host. */
export class ShmCommunicator implements Communicator {
  readonly transport = "shm";
  readonly rank: number;
  readonly worldSize: number;
  readonly localRank: number;
  #worker: WorkerChannel<ShmRequest>;
  #fd = -1;
  /** Where the next region starts in our file (after the staging area). */
  #end: number;
  #regions = new Map<ArrayBufferLike, FileRegion>();
  #closed = false;

  private constructor(private cfg: ShmConfig) {
    ({ rank: this.rank, worldSize: this.worldSize, localRank: this.localRank } = cfg);
    this.#worker = new WorkerChannel(new URL("./_shm_worker.ts", import.meta.url), cfg.rank);
    this.#end = alignUp(cfg.stagingBytes);
  }

  /**
   * Removes stale files of crashed runs beside `dir`, starts the Worker, connects the control
   * ring and maps every rank's file; rejects if the other ranks don't show up in time.
   */
  static async create(cfg: ShmConfig): Promise<ShmCommunicator> {
    removeStaleMappingsUnder(dirname(cfg.dir));
    const comm = new ShmCommunicator({ ...cfg, stagingBytes: alignUp(cfg.stagingBytes) });
    try {
      const reply = await comm.#worker.request<ConnectReply>({
        type: "connect",
        id: 0,
        dir: cfg.dir,
        rank: cfg.rank,
        worldSize: cfg.worldSize,
        stagingBytes: comm.cfg.stagingBytes,
        connectTimeoutMs: cfg.startupTimeoutMs,
        options: {
          chunkBytes: 64 << 10,
          timeoutMs: cfg.timeoutMs,
          firstTimeoutMs: cfg.startupTimeoutMs,
          prefix: "shm.",
        },
      });
      comm.#fd = reply.fd;
    } catch (e) {
      comm.#worker.terminate(e as Error);
      throw e;
    }
    return comm;
  }

  /**
   * A zeroed array in this rank's shared file: collectives on it (or on a subarray) run in
   * place, without copies. Every rank must make the same host buffers in the same order. It
   * stays valid until the process exits.
   */
  hostBuffer(length: number): Float32Array {
    if (this.#closed) throw new Error(`rank ${this.rank}: communicator closed`);
    const region = { offset: this.#end, bytes: alignUp(4 * length) };
    resizeFile(this.#fd, region.offset + region.bytes, `rank ${this.rank}'s shared file`);
    const { buffer } = mapFile(this.#fd, region.offset, region.bytes, "our shared file");
    this.#end += region.bytes;
    this.#regions.set(buffer, region);
    return new Float32Array(buffer, 0, length);
  }

  allReduceSum(data: Float32Array): Promise<void> {
    return this.#on(data, (place) => ({ type: "allReduce", id: 0, place, mean: false }));
  }

  allReduceMean(data: Float32Array): Promise<void> {
    return this.#on(data, (place) => ({ type: "allReduce", id: 0, place, mean: true }));
  }

  broadcast(data: Float32Array, root = 0): Promise<void> {
    return this.#on(data, (place) => ({ type: "broadcast", id: 0, place, root }));
  }

  /** A sum over W floats: no rank's part is summed before every rank's data is there. */
  barrier(): Promise<void> {
    return this.allReduceSum(new Float32Array(this.worldSize));
  }

  /** Fails any collective still waiting, stops the Worker; later calls reject. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (!this.#worker.broken) await this.#worker.request({ type: "close", id: 0 });
    } finally {
      this.#worker.terminate(new Error(`rank ${this.rank}: communicator closed`));
      if (this.#fd >= 0) closeFile(this.#fd);
      if (this.cfg.removeDir) await Deno.remove(this.cfg.dir).catch(() => {});
    }
  }

  /** Runs a collective in place on a host buffer, else through a shared copy of `data`. */
  async #on(data: Float32Array, request: (place: Place) => ShmRequest): Promise<void> {
    const region = this.#regions.get(data.buffer);
    if (region) {
      const start = data.byteOffset / 4;
      await this.#worker.request(request({ region, start, count: data.length }));
      return;
    }
    if (data.buffer instanceof SharedArrayBuffer) {
      await this.#worker.request(request({ data }));
      return;
    }
    const shared = sharedFloat32(data.length);
    shared.set(data);
    await this.#worker.request(request({ data: shared }));
    data.set(shared);
  }
}

function alignUp(bytes: number): number {
  return Math.max(MAP_ALIGN, Math.ceil(bytes / MAP_ALIGN) * MAP_ALIGN);
}

/**
 * Main-thread side of the Unix-socket ring: hands requests to the Worker (_ring_worker.ts) that
 * owns the sockets and resolves each call when its reply comes back. A web Worker: Deno's
 * node:worker_threads Worker could be unref'd, but ran the ring 100x slower at 128 MiB (Deno 2.9).
 * The Worker keeps the process alive until close().
 */
import { type Communicator, sharedFloat32, type TransportConfig } from "./communicator.ts";
import type { RingRequest } from "./_ring_worker.ts";
import { WorkerChannel } from "./_worker_channel.ts";

/** What {@link SocketCommunicator.create} needs. */
export interface SocketRingConfig extends TransportConfig {
  chunkBytes: number;
}

/** Ring all-reduce over Unix sockets between the ranks of one host. */
export class SocketCommunicator implements Communicator {
  readonly transport = "socket";
  #worker: WorkerChannel<RingRequest>;
  #closed = false;

  readonly rank: number;
  readonly worldSize: number;
  readonly localRank: number;

  private constructor(private cfg: SocketRingConfig) {
    ({ rank: this.rank, worldSize: this.worldSize, localRank: this.localRank } = cfg);
    this.#worker = new WorkerChannel(new URL("./_ring_worker.ts", import.meta.url), cfg.rank);
  }

  /** Starts the Worker and connects the ring; rejects if the neighbours don't show up in time. */
  static async create(cfg: SocketRingConfig): Promise<SocketCommunicator> {
    const comm = new SocketCommunicator(cfg);
    try {
      await comm.#worker.request({
        type: "connect",
        id: 0,
        dir: cfg.dir,
        rank: cfg.rank,
        worldSize: cfg.worldSize,
        connectTimeoutMs: cfg.startupTimeoutMs,
        options: {
          chunkBytes: cfg.chunkBytes,
          timeoutMs: cfg.timeoutMs,
          firstTimeoutMs: cfg.startupTimeoutMs,
        },
      });
    } catch (e) {
      comm.#worker.terminate(e as Error);
      throw e;
    }
    return comm;
  }

  allReduceSum(data: Float32Array): Promise<void> {
    return this.#onShared(data, (d) => ({ type: "allReduce", id: 0, data: d, op: "sum" }));
  }

  allReduceMean(data: Float32Array): Promise<void> {
    return this.#onShared(data, (d) => ({ type: "allReduce", id: 0, data: d, op: "mean" }));
  }

  broadcast(data: Float32Array, root = 0): Promise<void> {
    return this.#onShared(data, (d) => ({ type: "broadcast", id: 0, data: d, root }));
  }

  /** A SharedArrayBuffer: the Worker reduces it in place. */
  hostBuffer(length: number): Float32Array {
    return sharedFloat32(length);
  }

  /** A sum over W floats: each ring step carries data, so no rank passes before all arrive. */
  barrier(): Promise<void> {
    return this.allReduceSum(new Float32Array(new SharedArrayBuffer(4 * this.worldSize)));
  }

  /** Fails any collective still waiting, stops the Worker; later calls reject. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (!this.#worker.broken) await this.#worker.request({ type: "close", id: 0 });
    } finally {
      this.#worker.terminate(new Error(`rank ${this.rank}: communicator closed`));
      if (this.cfg.removeDir) await Deno.remove(this.cfg.dir).catch(() => {});
    }
  }

  /** Runs a collective on `data`, through a shared copy when `data` is not shared already. */
  async #onShared(data: Float32Array, request: (d: Float32Array) => RingRequest): Promise<void> {
    if (data.buffer instanceof SharedArrayBuffer) {
      await this.#worker.request(request(data));
      return;
    }
    const shared = sharedFloat32(data.length);
    shared.set(data);
    await this.#worker.request(request(shared));
    data.set(shared);
  }
}

/**
 * Main-thread side of the Unix-socket ring: hands requests to the Worker (_ring_worker.ts) that
 * owns the sockets and resolves each call when its reply comes back. A web Worker: Deno's
 * node:worker_threads Worker could be unref'd, but ran the ring 100x slower at 128 MiB (Deno 2.9).
 * The Worker keeps the process alive until close().
 */
import type { Communicator } from "./communicator.ts";
import type { RingReply, RingRequest } from "./_ring_worker.ts";

/** What {@link SocketCommunicator.create} needs. */
export interface SocketRingConfig {
  rank: number;
  worldSize: number;
  localRank: number;
  /** Private folder of the job's sockets (socket_dir.ts). */
  dir: string;
  /** Remove `dir` at close (if empty: failure reports stay). */
  removeDir: boolean;
  timeoutMs: number;
  startupTimeoutMs: number;
  chunkBytes: number;
}

type Pending = { resolve: () => void; reject: (e: Error) => void };

/** Ring all-reduce over Unix sockets between the ranks of one host. */
export class SocketCommunicator implements Communicator {
  readonly transport = "socket";
  #worker: Worker;
  #nextId = 0;
  #pending = new Map<number, Pending>();
  #broken: Error | undefined;
  #closed = false;

  readonly rank: number;
  readonly worldSize: number;
  readonly localRank: number;

  private constructor(private cfg: SocketRingConfig) {
    ({ rank: this.rank, worldSize: this.worldSize, localRank: this.localRank } = cfg);
    this.#worker = new Worker(new URL("./_ring_worker.ts", import.meta.url), { type: "module" });
    this.#worker.onmessage = (e: MessageEvent<RingReply>) => {
      const reply = e.data;
      const p = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (reply.error === undefined) return p?.resolve();
      this.#broken ??= new Error(reply.error);
      p?.reject(new Error(reply.error));
    };
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      const crash = new Error(`rank ${this.rank}: all-reduce worker crashed: ${e.message}`);
      this.#broken ??= crash;
      for (const p of this.#pending.values()) p.reject(crash);
      this.#pending.clear();
    };
  }

  /** Starts the Worker and connects the ring; rejects if the neighbours don't show up in time. */
  static async create(cfg: SocketRingConfig): Promise<SocketCommunicator> {
    const comm = new SocketCommunicator(cfg);
    try {
      await comm.#request({
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
      comm.#worker.terminate();
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

  /** A sum over W floats: each ring step carries data, so no rank passes before all arrive. */
  barrier(): Promise<void> {
    return this.allReduceSum(new Float32Array(new SharedArrayBuffer(4 * this.worldSize)));
  }

  /** Fails any collective still waiting, stops the Worker; later calls reject. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (!this.#broken) await this.#request({ type: "close", id: 0 });
    } finally {
      this.#worker.terminate();
      this.#broken ??= new Error(`rank ${this.rank}: communicator closed`);
      if (this.cfg.removeDir) await Deno.remove(this.cfg.dir).catch(() => {});
    }
  }

  /** Runs a collective on `data`, through a shared copy when `data` is not shared already. */
  async #onShared(data: Float32Array, request: (d: Float32Array) => RingRequest): Promise<void> {
    if (data.buffer instanceof SharedArrayBuffer) return await this.#request(request(data));
    const shared = new Float32Array(new SharedArrayBuffer(data.byteLength));
    shared.set(data);
    await this.#request(request(shared));
    data.set(shared);
  }

  #request(req: RingRequest): Promise<void> {
    if (this.#broken) return Promise.reject(this.#broken);
    req.id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      this.#pending.set(req.id, { resolve, reject });
      this.#worker.postMessage(req);
    });
  }
}

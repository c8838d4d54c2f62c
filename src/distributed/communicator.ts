/**
 * The collectives a data-parallel trainer needs, behind one interface with four transports:
 * a no-op for a single rank, shared memory (one host, shm.ts), a ring over Unix sockets (one
 * host, run in a Worker) and MPI through FFI (across hosts). Create it with {@link createCommunicator}; rank numbers come from the
 * launcher's environment (see rank.ts).
 */
import { type Env, rankFromEnv } from "./rank.ts";
import { SOCKET_DIR_ENV, socketDirFromEnv } from "./socket_dir.ts";
import { SocketCommunicator } from "./socket_ring.ts";
import { ShmCommunicator } from "./shm.ts";
import { MpiCommunicator } from "./mpi.ts";
import { watchLauncher } from "./lifeline.ts";

/**
 * Collective operations over all ranks. Every rank must issue the same collectives, with the
 * same lengths, in the same order. Calls may be issued without awaiting the previous one; they
 * run in call order. A failed collective (dead or hung rank) rejects with an error naming the
 * rank, and every later call rejects too: the job should exit non-zero.
 */
export interface Communicator {
  /** This process's global rank, 0 <= rank < worldSize. */
  readonly rank: number;
  /** Number of ranks. */
  readonly worldSize: number;
  /** Rank on this host: pick this rank's GPU with it. */
  readonly localRank: number;
  /** "single", "shm", "socket" or "mpi". */
  readonly transport: DistTransport | "single";
  /**
   * A zeroed array for data that collectives will run on, e.g. the gradients: the shm transport
   * reduces it in place in shared memory and the socket one from its Worker, without copies.
   * Every rank makes the same ones in the same order.
   */
  hostBuffer(length: number): Float32Array;
  /** data <- elementwise sum over ranks, in place, identical bits on every rank. */
  allReduceSum(data: Float32Array): Promise<void>;
  /** data <- (sum over ranks) * (1 / worldSize), in place, identical bits on every rank. */
  allReduceMean(data: Float32Array): Promise<void>;
  /** data <- root's data, in place. */
  broadcast(data: Float32Array, root?: number): Promise<void>;
  /** Resolves once every rank has called barrier(). */
  barrier(): Promise<void>;
  /** Releases sockets, Worker or MPI; the process may not exit until this is called. */
  close(): Promise<void>;
}

/** Transports selectable with `--dist`. */
export type DistTransport = "shm" | "socket" | "mpi";

/** What every transport on one host needs: who this rank is and the job's private folder. */
export interface TransportConfig {
  rank: number;
  worldSize: number;
  localRank: number;
  /** The job's private rank folder (socket_dir.ts): its sockets (and shm's mapped files). */
  dir: string;
  /** Remove `dir` at close (if empty: failure reports stay). */
  removeDir: boolean;
  timeoutMs: number;
  startupTimeoutMs: number;
}

/** Every {@link DistTransport}, the default (one host) first. */
export const DIST_TRANSPORTS: readonly DistTransport[] = ["shm", "socket", "mpi"];

/** Options of {@link createCommunicator}. */
export interface CommunicatorOptions {
  /** Transport for more than one rank (default "shm"; "mpi" under mpirun or srun). */
  dist?: DistTransport;
  /**
   * A collective fails when a peer makes no progress for this long (default 30 s, or
   * REPGPT_DIST_TIMEOUT seconds from the environment).
   */
  timeoutMs?: number;
  /** The same for connecting and for the first collective, which waits for GPU start-up (120 s). */
  startupTimeoutMs?: number;
  /**
   * Socket ring: read/write size and reduction chunk; shm: each rank's staging area for arrays
   * that are not host buffers. Bytes (default 4 MiB).
   */
  chunkBytes?: number;
  /** Environment to read ranks from (default the process's). */
  env?: Env;
}

/** Parses a `--dist` value; throws naming the flag and the choices when it is none of them. */
export function parseDist(value: string): DistTransport {
  const known = DIST_TRANSPORTS.find((t) => t === value);
  if (known) return known;
  throw new Error(`--dist must be one of ${DIST_TRANSPORTS.join(", ")}, got "${value}"`);
}

/**
 * Joins the job described by the environment. One rank gets the no-op communicator; more get
 * shared memory or the socket ring (after connecting to their neighbours), or MPI. A rank that `launch()` started
 * stops by itself if its launcher dies (lifeline.ts) until the communicator is closed.
 */
export async function createCommunicator(opts: CommunicatorOptions = {}): Promise<Communicator> {
  const env = opts.env ?? Deno.env.toObject();
  const lifeline = watchLauncher(env);
  if (!lifeline) return await joinJob(env, opts);
  let comm: Communicator;
  try {
    comm = await joinJob(env, opts);
  } catch (e) {
    lifeline.stop();
    throw e;
  }
  const close = comm.close.bind(comm);
  return Object.assign(comm, {
    async close() {
      try {
        await close();
      } finally {
        lifeline.stop();
      }
    },
  });
}

async function joinJob(env: Env, opts: CommunicatorOptions): Promise<Communicator> {
  const envTimeout = env.REPGPT_DIST_TIMEOUT;
  if (envTimeout !== undefined && !(Number(envTimeout) > 0)) {
    throw new Error(`REPGPT_DIST_TIMEOUT="${envTimeout}" is not a positive number of seconds`);
  }
  const timeoutMs = opts.timeoutMs ?? (envTimeout ? Number(envTimeout) * 1000 : 30_000);
  const startupTimeoutMs = Math.max(timeoutMs, opts.startupTimeoutMs ?? 120_000);
  if (opts.dist === "mpi") return MpiCommunicator.create({ env, timeoutMs, startupTimeoutMs });
  const info = rankFromEnv(env);
  if (info.worldSize === 1) return new SingleRank();
  if (info.localWorldSize !== undefined && info.localWorldSize !== info.worldSize) {
    throw new Error(
      `the ${opts.dist ?? "shm"} transport needs all ${info.worldSize} ranks on one host, but ` +
        `this host has ` +
        `${info.localWorldSize} (${info.source}): use --dist mpi`,
    );
  }
  const common = {
    ...info,
    dir: await socketDirFromEnv(env),
    // launch() removes its folder; a folder named after mpirun's or srun's job id is ours.
    removeDir: !env[SOCKET_DIR_ENV] && info.localRank === 0,
    timeoutMs,
    startupTimeoutMs,
  };
  const chunkBytes = opts.chunkBytes ?? 4 << 20;
  if (opts.dist === "socket") return await SocketCommunicator.create({ ...common, chunkBytes });
  return await ShmCommunicator.create({ ...common, stagingBytes: chunkBytes });
}

/** The communicator of a one-rank job: every collective is the identity. */
export class SingleRank implements Communicator {
  readonly rank = 0;
  readonly worldSize = 1;
  readonly localRank = 0;
  readonly transport = "single";
  hostBuffer(length: number): Float32Array {
    return new Float32Array(length);
  }
  allReduceSum(_data: Float32Array): Promise<void> {
    return Promise.resolve();
  }
  allReduceMean(_data: Float32Array): Promise<void> {
    return Promise.resolve();
  }
  broadcast(_data: Float32Array, _root = 0): Promise<void> {
    return Promise.resolve();
  }
  barrier(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * A Float32Array on a SharedArrayBuffer. The socket transport reduces such arrays in place in
 * its Worker; any other array is copied in and out (one extra pass over the data each way).
 */
export function sharedFloat32(length: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(4 * length));
}

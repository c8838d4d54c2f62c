/**
 * Collectives through Open MPI's C library via Deno FFI (`--dist mpi`, under mpirun or srun).
 *
 * Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM) are addresses of global structs
 * (`ompi_mpi_comm_world`, ...), so we look them up with libc's dlsym after opening libmpi
 * RTLD_GLOBAL (its plugins resolve symbols against it). Calls run `nonblocking` (on a helper
 * thread), one at a time in call order, under MPI_THREAD_MULTIPLE. A call that does not finish
 * within the timeout rejects (MPI cannot name the missing rank); mpirun itself kills the job when
 * a rank dies. Sums for two ranks equal the socket ring's bit for bit (a + b); for more ranks
 * Open MPI picks its own association order, which differs from the ring's.
 */
import type { Communicator } from "./communicator.ts";
import { type Env, rankFromEnv } from "./rank.ts";
import { scale } from "./_ring.ts";

const LIBMPI_CANDIDATES = [
  "libmpi.so.40",
  "/usr/lib/x86_64-linux-gnu/libmpi.so.40",
  "/usr/lib/aarch64-linux-gnu/libmpi.so.40",
  "/usr/lib64/openmpi/lib/libmpi.so.40",
  "/opt/amazon/openmpi/lib/libmpi.so.40",
  "/opt/amazon/openmpi/lib64/libmpi.so.40",
  "/opt/hpcx/ompi/lib/libmpi.so.40",
  "/usr/local/lib/libmpi.so.40",
  "libmpi.so",
];
const RTLD_NOW = 2, RTLD_GLOBAL = 0x100;
const MPI_THREAD_MULTIPLE = 3; // Open MPI's value
const MPI_SUCCESS = 0;
/** MPI counts are C ints; longer arrays go in pieces. */
const MAX_COUNT = 1 << 30;

const MPI_SYMBOLS = {
  MPI_Init_thread: { parameters: ["pointer", "pointer", "i32", "buffer"], result: "i32" },
  MPI_Initialized: { parameters: ["buffer"], result: "i32" },
  MPI_Comm_rank: { parameters: ["pointer", "buffer"], result: "i32" },
  MPI_Comm_size: { parameters: ["pointer", "buffer"], result: "i32" },
  MPI_Allreduce: {
    parameters: ["pointer", "buffer", "i32", "pointer", "pointer", "pointer"],
    result: "i32",
    nonblocking: true,
  },
  MPI_Bcast: {
    parameters: ["buffer", "i32", "pointer", "i32", "pointer"],
    result: "i32",
    nonblocking: true,
  },
  MPI_Barrier: { parameters: ["pointer"], result: "i32", nonblocking: true },
  MPI_Finalize: { parameters: [], result: "i32" },
} as const;

type MpiLib = Deno.DynamicLibrary<typeof MPI_SYMBOLS>["symbols"];

interface Handles {
  comm: Deno.PointerValue;
  float: Deno.PointerValue;
  sum: Deno.PointerValue;
}

/** Options of {@link MpiCommunicator.create}. */
export interface MpiOptions {
  env: Env;
  timeoutMs: number;
  startupTimeoutMs: number;
  /** libmpi to open; default REPGPT_LIBMPI or the usual Open MPI locations. */
  libPath?: string;
}

/** MPI_COMM_WORLD collectives. */
export class MpiCommunicator implements Communicator {
  readonly transport = "mpi";
  #queue: Promise<void> = Promise.resolve();
  #calls = 0;
  #broken: Error | undefined;

  private constructor(
    readonly rank: number,
    readonly worldSize: number,
    readonly localRank: number,
    private lib: Deno.DynamicLibrary<typeof MPI_SYMBOLS>,
    private h: Handles,
    private opts: MpiOptions,
  ) {}

  /** Opens libmpi, initialises MPI (thread multiple) and reads rank and size from it. */
  static create(opts: MpiOptions): MpiCommunicator {
    const path = opts.libPath ?? opts.env.REPGPT_LIBMPI;
    const candidates = path ? [path] : LIBMPI_CANDIDATES;
    const { lib, handles } = openMpi(candidates);
    const mpi = lib.symbols;
    const flag = new Int32Array(1);
    check(mpi.MPI_Initialized(flag), "MPI_Initialized");
    if (!flag[0]) {
      const provided = new Int32Array(1);
      check(mpi.MPI_Init_thread(null, null, MPI_THREAD_MULTIPLE, provided), "MPI_Init_thread");
      if (provided[0] < MPI_THREAD_MULTIPLE) {
        throw new Error(`MPI gave thread level ${provided[0]}, we need MPI_THREAD_MULTIPLE (3)`);
      }
    }
    const out = new Int32Array(1);
    check(mpi.MPI_Comm_rank(handles.comm, out), "MPI_Comm_rank");
    const rank = out[0];
    check(mpi.MPI_Comm_size(handles.comm, out), "MPI_Comm_size");
    const worldSize = out[0];
    const envInfo = rankFromEnv(opts.env);
    const localRank = envInfo.worldSize === worldSize ? envInfo.localRank : 0;
    return new MpiCommunicator(rank, worldSize, localRank, lib, handles, opts);
  }

  /** An ordinary array: MPI reads it where it is. */
  hostBuffer(length: number): Float32Array {
    return new Float32Array(length);
  }

  async allReduceSum(data: Float32Array): Promise<void> {
    await this.#allReduce(data);
  }

  async allReduceMean(data: Float32Array): Promise<void> {
    await this.#allReduce(data);
    scale(data, 1 / this.worldSize);
  }

  broadcast(data: Float32Array, root = 0): Promise<void> {
    if (!(root >= 0 && root < this.worldSize)) {
      return Promise.reject(new Error(`broadcast root ${root} is not a rank of ${this.worldSize}`));
    }
    return this.#serial("MPI_Bcast", async (mpi) => {
      for (let at = 0; at < data.length; at += MAX_COUNT) {
        const part = data.subarray(at, at + MAX_COUNT);
        check(await mpi.MPI_Bcast(part, part.length, this.h.float, root, this.h.comm), "MPI_Bcast");
      }
    });
  }

  barrier(): Promise<void> {
    return this.#serial("MPI_Barrier", async (mpi) => {
      check(await mpi.MPI_Barrier(this.h.comm), "MPI_Barrier");
    });
  }

  /** MPI_Finalize after the last call; the library stays open (MPI cannot be re-initialised). */
  async close(): Promise<void> {
    await this.#queue.catch(() => {});
    if (!this.#broken) check(this.lib.symbols.MPI_Finalize(), "MPI_Finalize");
    this.#broken = new Error("MPI communicator closed");
  }

  #allReduce(data: Float32Array): Promise<void> {
    const inPlace = Deno.UnsafePointer.create(1n); // MPI_IN_PLACE is (void *) 1
    return this.#serial("MPI_Allreduce", async (mpi) => {
      for (let at = 0; at < data.length; at += MAX_COUNT) {
        const part = data.subarray(at, at + MAX_COUNT);
        const rc = await mpi.MPI_Allreduce(
          inPlace,
          part,
          part.length,
          this.h.float,
          this.h.sum,
          this.h.comm,
        );
        check(rc, "MPI_Allreduce");
      }
    });
  }

  /** Runs MPI calls after the previous ones, failing after the timeout (a hung rank). */
  #serial(name: string, body: (mpi: MpiLib) => Promise<void>): Promise<void> {
    const limit = this.#calls++ === 0 ? this.opts.startupTimeoutMs : this.opts.timeoutMs;
    const run = async () => {
      if (this.#broken) throw this.#broken;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(
            new Error(
              `rank ${this.rank}: ${name} did not finish within ${limit / 1000} s ` +
                "(another rank hung or died)",
            ),
          );
        }, limit);
      });
      try {
        await Promise.race([body(this.lib.symbols), timeout]);
      } catch (e) {
        this.#broken ??= e instanceof Error ? e : new Error(String(e));
        throw this.#broken;
      } finally {
        clearTimeout(timer);
      }
    };
    const result = this.#queue.then(run);
    this.#queue = result.catch(() => {});
    return result;
  }
}

function check(rc: number, call: string): void {
  if (rc !== MPI_SUCCESS) throw new Error(`${call} failed with MPI error code ${rc}`);
}

const LIBC_SYMBOLS = {
  dlopen: { parameters: ["buffer", "i32"], result: "pointer" },
  dlsym: { parameters: ["pointer", "buffer"], result: "pointer" },
} as const;

function cString(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(s + "\0");
}

/** Opens the first libmpi that loads, RTLD_GLOBAL, and finds Open MPI's handle symbols. */
function openMpi(candidates: string[]): {
  lib: Deno.DynamicLibrary<typeof MPI_SYMBOLS>;
  handles: Handles;
} {
  const libc = Deno.dlopen("libc.so.6", LIBC_SYMBOLS);
  try {
    for (const path of candidates) {
      const handle = libc.symbols.dlopen(cString(path), RTLD_NOW | RTLD_GLOBAL);
      if (handle === null) continue;
      const sym = (name: string) => {
        const p = libc.symbols.dlsym(handle, cString(name));
        if (p === null) {
          throw new Error(`${path} has no symbol ${name}: only Open MPI is supported`);
        }
        return p;
      };
      const handles = {
        comm: sym("ompi_mpi_comm_world"),
        float: sym("ompi_mpi_float"),
        sum: sym("ompi_mpi_op_sum"),
      };
      return { lib: Deno.dlopen(path, MPI_SYMBOLS), handles };
    }
  } finally {
    libc.close();
  }
  throw new Error(
    `could not load Open MPI's libmpi (tried ${candidates.join(", ")}); ` +
      "install openmpi-bin and libopenmpi-dev, or set REPGPT_LIBMPI to its path",
  );
}

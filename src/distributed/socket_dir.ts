/**
 * The private folder that holds a job's Unix sockets: mode 0700, owned by us, unique per job,
 * under $XDG_RUNTIME_DIR (a per-user tmpfs), /dev/shm or /tmp. `launch()` creates it and passes it to the
 * ranks in REPGPT_SOCKET_DIR; ranks started by mpirun, srun or torchrun derive a name from the
 * job id their launcher exports, so every rank of the job agrees on it.
 */
import { join } from "node:path";
import { privateDirProblem } from "../io/private_dir.ts";
import type { Env } from "./rank.ts";

/** Environment variable that carries the socket folder from `launch()` to the ranks. */
export const SOCKET_DIR_ENV = "REPGPT_SOCKET_DIR";

/** Linux sockaddr_un holds 107 path bytes plus NUL. */
const MAX_SOCKET_PATH = 107;

/**
 * The folder new rank folders go in: $XDG_RUNTIME_DIR when it is a usable folder, else /dev/shm,
 * else /tmp. The first two are memory file systems (tmpfs), where the shared-memory transport's
 * files never cause disk writes; /tmp is often a disk.
 */
export function socketBase(env: Env = Deno.env.toObject()): string {
  for (const dir of [env.XDG_RUNTIME_DIR, "/dev/shm"]) {
    if (!dir) continue;
    try {
      if (Deno.statSync(dir).isDirectory) return dir;
    } catch { /* unset or stale: try the next */ }
  }
  return "/tmp";
}

/** Creates a fresh private folder for one job (what `launch()` does). */
export async function createSocketDir(env: Env = Deno.env.toObject()): Promise<string> {
  const dir = await Deno.makeTempDir({ dir: socketBase(env), prefix: "repgpt-" });
  await Deno.chmod(dir, 0o700);
  return dir;
}

/**
 * The job's socket folder for a rank: REPGPT_SOCKET_DIR when set, else a name derived from the
 * launcher's job id (Open MPI, Slurm, torchrun). Creates it (0700) if this rank is first and
 * refuses a folder that another user owns or others can read.
 */
export async function socketDirFromEnv(env: Env = Deno.env.toObject()): Promise<string> {
  let dir = env[SOCKET_DIR_ENV];
  if (!dir) {
    const job = env.PMIX_NAMESPACE ?? env.OMPI_MCA_ess_base_jobid ??
      (env.SLURM_JOB_ID && `${env.SLURM_JOB_ID}.${env.SLURM_STEP_ID ?? ""}`) ??
      (env.TORCHELASTIC_RUN_ID && `${env.TORCHELASTIC_RUN_ID}.${env.MASTER_PORT ?? ""}`);
    if (!job) {
      throw new Error(
        `no socket folder: set ${SOCKET_DIR_ENV} to a folder all ranks share, or start the ` +
          "ranks with launch() (--nproc), mpirun, srun or torchrun",
      );
    }
    dir = join(socketBase(env), `repgpt-${Deno.uid() ?? "u"}-${job.replace(/[^\w.-]/g, "_")}`);
    try {
      await Deno.mkdir(dir, { mode: 0o700 });
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
  }
  // Every rank must agree on the folder, so one that is not private is an error, not replaced.
  const problem = privateDirProblem(dir);
  if (problem) throw new Error(`socket folder ${dir} ${problem}; it must be ours with mode 0700`);
  return dir;
}

/**
 * Path of rank `rank`'s listening socket in `dir` (`<prefix>rank<r>.sock`: each transport has its
 * own prefix); throws if it is too long for sockaddr_un.
 */
export function socketPath(dir: string, rank: number, prefix = ""): string {
  const path = join(dir, `${prefix}rank${rank}.sock`);
  if (new TextEncoder().encode(path).length > MAX_SOCKET_PATH) {
    throw new Error(`socket path ${path} is longer than ${MAX_SOCKET_PATH} bytes`);
  }
  return path;
}

/**
 * Where this process sits in a multi-rank job, read from the environment of whichever launcher
 * started it: our own `launch()` and torchrun (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`), Open MPI's
 * mpirun (`OMPI_COMM_WORLD_*`) or Slurm's srun (`SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID`).
 * SageMaker starts one process per host; {@link launchPlan} in launcher.ts turns its `SM_*`
 * variables into local ranks.
 */

/** Which launcher's variables a {@link RankInfo} came from. */
export type RankSource = "torchrun" | "openmpi" | "slurm" | "single";

/** This process's place in the job. Ranks are 0-based. */
export interface RankInfo {
  /** Global rank, 0 <= rank < worldSize. */
  rank: number;
  /** Number of ranks in the job. */
  worldSize: number;
  /** Rank among the ranks on this host: selects this rank's GPU. */
  localRank: number;
  /** Ranks on this host, when the launcher says (the socket transport needs all on one host). */
  localWorldSize?: number;
  /** Where the numbers came from, for messages. */
  source: RankSource;
}

/** Environment as a plain record (`Deno.env.toObject()`), so tests can pass their own. */
export type Env = Record<string, string | undefined>;

/** Reads a non-negative integer variable; undefined when unset, a clear error when malformed. */
export function envInt(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  if (!/^\d+$/.test(raw.trim())) {
    throw new Error(`environment variable ${name}="${raw}" is not a non-negative integer`);
  }
  return Number(raw.trim());
}

function required(env: Env, name: string, because: string): number {
  const v = envInt(env, name);
  if (v === undefined) throw new Error(`environment variable ${name} is missing (${because})`);
  return v;
}

/**
 * Reads rank, world size and local rank from the environment. Precedence: RANK/WORLD_SIZE
 * (torchrun, `launch()`), then Open MPI, then Slurm (only inside an srun step, i.e. with
 * SLURM_STEP_ID set: a batch script also has SLURM_PROCID=0 and SLURM_NTASKS=N but is no rank).
 * Without any of them this is a single-rank job. Inconsistent values throw, naming the variables.
 */
export function rankFromEnv(env: Env = Deno.env.toObject()): RankInfo {
  let info: RankInfo;
  const names = (r: string, w: string) => `${r}=${env[r]}, ${w}=${env[w]}`;
  if (env.RANK !== undefined || env.WORLD_SIZE !== undefined) {
    const why = "RANK and WORLD_SIZE come together (torchrun style)";
    const rank = required(env, "RANK", why);
    info = {
      rank,
      worldSize: required(env, "WORLD_SIZE", why),
      localRank: envInt(env, "LOCAL_RANK") ?? rank,
      localWorldSize: envInt(env, "LOCAL_WORLD_SIZE"),
      source: "torchrun",
    };
    check(info, names("RANK", "WORLD_SIZE"), names("LOCAL_RANK", "LOCAL_WORLD_SIZE"));
  } else if (env.OMPI_COMM_WORLD_RANK !== undefined) {
    const why = "set by mpirun with OMPI_COMM_WORLD_RANK";
    info = {
      rank: required(env, "OMPI_COMM_WORLD_RANK", why),
      worldSize: required(env, "OMPI_COMM_WORLD_SIZE", why),
      localRank: required(env, "OMPI_COMM_WORLD_LOCAL_RANK", why),
      localWorldSize: envInt(env, "OMPI_COMM_WORLD_LOCAL_SIZE"),
      source: "openmpi",
    };
    check(
      info,
      names("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
      names("OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"),
    );
  } else if (env.SLURM_PROCID !== undefined && env.SLURM_STEP_ID !== undefined) {
    const why = "set by srun with SLURM_PROCID";
    const worldSize = required(env, "SLURM_NTASKS", why);
    info = {
      rank: required(env, "SLURM_PROCID", why),
      worldSize,
      localRank: required(env, "SLURM_LOCALID", why),
      localWorldSize: envInt(env, "SLURM_NNODES") === 1 ? worldSize : undefined,
      source: "slurm",
    };
    check(info, names("SLURM_PROCID", "SLURM_NTASKS"), `SLURM_LOCALID=${env.SLURM_LOCALID}`);
  } else {
    info = { rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1, source: "single" };
  }
  return info;
}

function check(info: RankInfo, globalVars: string, localVars: string): void {
  if (info.worldSize < 1) throw new Error(`world size must be at least 1 (${globalVars})`);
  if (info.rank >= info.worldSize) {
    throw new Error(`rank ${info.rank} is not below world size ${info.worldSize} (${globalVars})`);
  }
  const local = info.localWorldSize;
  if (local !== undefined && (local < 1 || local > info.worldSize)) {
    throw new Error(`local world size ${local} is not in 1..${info.worldSize} (${localVars})`);
  }
  if (info.localRank >= (local ?? info.worldSize)) {
    throw new Error(
      `local rank ${info.localRank} is not below ${local ?? info.worldSize} (${localVars})`,
    );
  }
}

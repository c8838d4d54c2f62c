/**
 * Starts N ranks of this same program on this host, like `torchrun --standalone`: each child
 * gets RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE and REPGPT_SOCKET_DIR (a fresh 0700
 * folder, removed at the end). Rank 0 writes straight to our stdout/stderr; other ranks' lines
 * are prefixed "[rank N] ". The first rank to fail (non-zero exit or signal) fails the job: the
 * others are stopped and the message names it. SIGINT/SIGTERM stop every rank. Each rank's
 * stdin is a pipe from us that we never write: if we die, even by SIGKILL, the ranks read EOF
 * and stop (lifeline.ts).
 */
import { basename } from "node:path";
import { type Env, envInt } from "./rank.ts";
import { LAUNCHER_PID_ENV } from "./lifeline.ts";
import { createSocketDir, SOCKET_DIR_ENV } from "./socket_dir.ts";

/** What {@link launchPlan} decides: this process should start `nproc` local ranks. */
export interface LaunchPlan {
  /** Ranks to start on this host. */
  nproc: number;
  /** Global rank of the first local rank (SageMaker: host index * nproc). */
  rankOffset: number;
  /** Ranks in the whole job. */
  worldSize: number;
}

/** Options of {@link launch}. */
export interface LaunchOptions extends Partial<LaunchPlan> {
  nproc: number;
  /** Arguments for every rank (default this process's `Deno.args`). */
  args?: string[];
  /** Program and leading arguments to run instead of this one (default {@link selfCommand}). */
  command?: string[];
  /** Extra environment for the ranks. */
  env?: Record<string, string>;
  /** After the first failure or a signal, how long ranks get to exit before SIGKILL (5 s). */
  graceMs?: number;
}

/**
 * Whether this process must launch local ranks rather than be one. Null when it already is a
 * rank (RANK, OMPI_COMM_WORLD_RANK or srun's SLURM_PROCID set) or when one rank is all that is
 * wanted. `nproc` is the `--nproc` flag; on SageMaker (SM_HOSTS, SM_CURRENT_HOST) it defaults to
 * SM_NUM_GPUS and the ranks are numbered host index * nproc + local rank.
 */
export function launchPlan(
  nproc: number | undefined,
  env: Env = Deno.env.toObject(),
): LaunchPlan | null {
  if (nproc !== undefined && !(Number.isInteger(nproc) && nproc >= 1)) {
    throw new Error(`--nproc must be a positive integer, got ${nproc}`);
  }
  const isRank = env.RANK !== undefined || env.OMPI_COMM_WORLD_RANK !== undefined ||
    (env.SLURM_PROCID !== undefined && env.SLURM_STEP_ID !== undefined);
  if (isRank) return null;
  if (env.SM_HOSTS !== undefined && env.SM_CURRENT_HOST !== undefined) {
    let hosts: unknown;
    try {
      hosts = JSON.parse(env.SM_HOSTS);
    } catch {
      // reported below
    }
    if (!Array.isArray(hosts) || !hosts.every((h) => typeof h === "string")) {
      throw new Error(`SM_HOSTS=${env.SM_HOSTS} is not a JSON list of host names`);
    }
    const hostIndex = hosts.indexOf(env.SM_CURRENT_HOST);
    if (hostIndex < 0) {
      throw new Error(`SM_CURRENT_HOST=${env.SM_CURRENT_HOST} is not in SM_HOSTS=${env.SM_HOSTS}`);
    }
    const local = nproc ?? Math.max(1, envInt(env, "SM_NUM_GPUS") ?? 1);
    const worldSize = hosts.length * local;
    return worldSize > 1 ? { nproc: local, rankOffset: hostIndex * local, worldSize } : null;
  }
  return nproc !== undefined && nproc > 1 ? { nproc, rankOffset: 0, worldSize: nproc } : null;
}

/**
 * How to start this program again: `deno run -A <main module>` under `deno run`, the binary
 * itself when compiled (`deno compile`), whose arguments follow.
 */
export function selfCommand(): string[] {
  const exe = Deno.execPath();
  const isDeno = /^deno(\.exe)?$/.test(basename(exe)) && Deno.mainModule.startsWith("file:");
  return isDeno ? [exe, "run", "-A", Deno.mainModule] : [exe];
}

/**
 * Runs `nproc` ranks and waits for them. Resolves to the exit code for this process: 0 when
 * every rank succeeded, else non-zero after a message naming the first rank that failed.
 */
export async function launch(opts: LaunchOptions): Promise<number> {
  const { nproc, rankOffset = 0, worldSize = opts.nproc, graceMs = 5000 } = opts;
  if (!(Number.isInteger(nproc) && nproc >= 1 && rankOffset + nproc <= worldSize)) {
    throw new Error(`cannot launch ranks ${rankOffset}..${rankOffset + nproc - 1} of ${worldSize}`);
  }
  const [cmd, ...lead] = opts.command ?? selfCommand();
  const args = [...lead, ...(opts.args ?? Deno.args)];
  const dir = await createSocketDir();
  const children: Deno.ChildProcess[] = [];
  let failure: string | undefined;
  let stopping = false;
  const stopAll = (signal: Deno.Signal) => {
    for (const c of children) {
      try {
        c.kill(signal);
      } catch { /* already exited */ }
    }
  };
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const stop = (why: string) => {
    failure ??= why;
    if (stopping) return;
    stopping = true;
    stopAll("SIGTERM");
    killTimer = setTimeout(() => stopAll("SIGKILL"), graceMs);
  };
  const onSignal = (signal: Deno.Signal) => () => stop(`launcher received ${signal}`);
  const handlers = (["SIGINT", "SIGTERM"] as const).map((s) => [s, onSignal(s)] as const);
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  try {
    const exits: Promise<void>[] = [];
    for (let local = 0; local < nproc; local++) {
      const rank = rankOffset + local;
      let child: Deno.ChildProcess;
      try {
        child = new Deno.Command(cmd, {
          args,
          env: {
            ...opts.env,
            RANK: `${rank}`,
            LOCAL_RANK: `${local}`,
            WORLD_SIZE: `${worldSize}`,
            LOCAL_WORLD_SIZE: `${nproc}`,
            [SOCKET_DIR_ENV]: dir,
            [LAUNCHER_PID_ENV]: `${Deno.pid}`,
          },
          stdin: "piped", // the lifeline: closed by the kernel when we die
          stdout: rank === 0 ? "inherit" : "piped",
          stderr: rank === 0 ? "inherit" : "piped",
        }).spawn();
      } catch (e) {
        stop(`could not start rank ${rank} (${cmd}): ${e instanceof Error ? e.message : e}`);
        break;
      }
      children.push(child);
      const forwarded = rank === 0 ? [] : [
        prefixLines(child.stdout, `[rank ${rank}] `, Deno.stdout),
        prefixLines(child.stderr, `[rank ${rank}] `, Deno.stderr),
      ];
      exits.push((async () => {
        const status = await child.status;
        await child.stdin.close().catch(() => {}); // the rank is gone: release our end
        await Promise.all(forwarded);
        if (!status.success) {
          const how = status.signal
            ? `was killed by ${status.signal}`
            : `exited with code ${status.code}`;
          stop(`rank ${rank} ${how}`);
        }
      })());
    }
    await Promise.all(exits);
  } finally {
    clearTimeout(killTimer);
    for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  if (failure === undefined) return 0;
  console.error(`launch: ${failure}; stopped the other ranks`);
  return 1;
}

/**
 * Copies a child's output to `out`, each line prefixed, partial last line included. Reads to the
 * end even when `out` fails, so the child never blocks on a full pipe.
 */
async function prefixLines(
  stream: ReadableStream<Uint8Array>,
  prefix: string,
  out: { write(p: Uint8Array): Promise<number> },
): Promise<void> {
  const enc = new TextEncoder();
  let outClosed = false;
  const writeAll = async (s: string) => {
    const b = enc.encode(s);
    try {
      for (let at = 0; !outClosed && at < b.length;) at += await out.write(b.subarray(at));
    } catch {
      outClosed = true; // our reader went away (e.g. `| head`): keep draining the child
    }
  };
  let carry = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    const lines = (carry + text).split("\n");
    carry = lines.pop()!;
    if (lines.length) await writeAll(lines.map((l) => prefix + l + "\n").join(""));
  }
  if (carry) await writeAll(prefix + carry + "\n");
}

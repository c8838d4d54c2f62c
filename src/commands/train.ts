/**
 * `deno task train`: the main job (src/train/train.ts). With `--nproc N` this process launches
 * N rank processes of itself; otherwise it is one rank. The flags are src/train/options.ts's
 * table of run options.
 */
import { type FlagSpecs, formatHelp, parseFlags } from "./flags.ts";
import { createCommunicator, parseDist } from "../distributed/communicator.ts";
import { launch, launchPlan } from "../distributed/launcher.ts";
import { requestGpu } from "../gpu/device.ts";
import { selectGpu } from "../distributed/gpu_select.ts";
import { givenFromFlags } from "../train/option_table.ts";
import {
  checkConflicts,
  RECIPES_HELP,
  resolveTrainConfig,
  TRAIN_FLAG_SPECS,
  TRAIN_OPTIONS,
} from "../train/options.ts";
import { train } from "../train/train.ts";
import { startDashboard } from "../log/dashboard.ts";

const USAGE = "deno task train [flags]   (compiled: repgpt train [flags])";

/** Entry point of `deno task train` and `repgpt train`. */
export async function trainMain(args: string[]): Promise<void> {
  const { values, help } = parseFlags(args, TRAIN_FLAG_SPECS satisfies FlagSpecs);
  if (help) {
    console.log(`${formatHelp(USAGE, TRAIN_FLAG_SPECS)}\n\n${RECIPES_HELP}`);
    return;
  }
  const given = givenFromFlags(TRAIN_OPTIONS, values);
  // Before launching ranks or requesting the GPU, so that a conflict exits 2 at once.
  checkConflicts(given);
  const plan = launchPlan(given.nproc);
  if (plan) {
    const code = await launch({ ...plan, args });
    if (code !== 0) Deno.exit(code);
    return;
  }
  const comm = await createCommunicator({
    dist: parseDist(given.dist ?? TRAIN_OPTIONS.dist.default),
  });
  try {
    const gpuChoice = selectGpu(comm.localRank);
    const gpu = await requestGpu({ log: true });
    if (comm.worldSize > 1) {
      console.log(
        `rank ${comm.rank}: ${gpu.name} (${gpuChoice.address ?? "default"}: ${gpuChoice.reason})`,
      );
    }
    const config = resolveTrainConfig(given, {
      softwareAdapter: gpu.isFallback,
      worldSize: comm.worldSize,
      env: Deno.env.toObject(),
    });
    const dashboard = config.dashboard && comm.rank === 0
      ? await startDashboard({ runs: [config.out] })
      : null;
    if (dashboard) console.log(`dashboard: ${dashboard.url}`);
    try {
      await train(config, { comm, gpu });
    } finally {
      await dashboard?.close();
    }
  } finally {
    await comm.close();
  }
}

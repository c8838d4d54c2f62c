/**
 * `deno task train`: the main job (src/train/train.ts). With `--nproc N` this process launches
 * N rank processes of itself; otherwise it is one rank.
 */
import { formatHelp, parseFlags } from "./flags.ts";
import { createCommunicator, parseDist } from "../distributed/communicator.ts";
import { launch, launchPlan } from "../distributed/launcher.ts";
import { requestGpu } from "../gpu/device.ts";
import { selectGpu } from "../distributed/gpu_select.ts";
import { cpuRecipeHelp, resolveTrainConfig, TRAIN_FLAGS } from "../train/options.ts";
import { train } from "../train/train.ts";

const USAGE = "deno task train [flags]   (compiled: repgpt train [flags])";

/** Entry point of `deno task train` and `repgpt train`. */
export async function trainMain(args: string[]): Promise<void> {
  const { values, help } = parseFlags(args, TRAIN_FLAGS);
  if (help) {
    console.log(`${formatHelp(USAGE, TRAIN_FLAGS)}\n\n${cpuRecipeHelp()}`);
    return;
  }
  const plan = launchPlan(values.nproc);
  if (plan) {
    const code = await launch({ ...plan, args });
    if (code !== 0) Deno.exit(code);
    return;
  }
  const comm = await createCommunicator({ dist: parseDist(values.dist) });
  try {
    const gpuChoice = selectGpu(comm.localRank);
    const gpu = await requestGpu({ log: true });
    if (comm.worldSize > 1) {
      console.log(
        `rank ${comm.rank}: ${gpu.name} (${gpuChoice.address ?? "default"}: ${gpuChoice.reason})`,
      );
    }
    const config = resolveTrainConfig(values, {
      softwareAdapter: gpu.isFallback,
      worldSize: comm.worldSize,
      env: Deno.env.toObject(),
    });
    await train(config, { comm, gpu });
  } finally {
    await comm.close();
  }
}

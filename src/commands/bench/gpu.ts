/**
 * `deno task bench gpu`: everything worth knowing about a GPU in one call (under 8 minutes on
 * an H100/H200): the adapter; the ceilings WebGPU reaches on it (f32 and packed-f16 FMA rate,
 * copy GB/s); every matmul of GPT-2 124M's training micro-step as a share of the f32 ceiling;
 * attention, the classifier, LayerNorm and GELU; the whole micro-step at B=16 and B=64,
 * T=1024, in tokens/s and MFU per precision; and, where PyTorch sees CUDA, the same micro-step
 * in PyTorch (fp32 without TF32, bf16) with repgpt's ratio. A table on stdout, one JSON line
 * per measurement in --out. Each stage has a share of --budget-s and skips, saying so, what
 * would not fit. `--smoke` runs it all at tiny shapes (a software adapter in CI).
 *
 * It imports no npm package: the GPU machines it is meant for have no network. There, run it
 * as `deno run --cached-only -A tasks/bench.ts gpu`: `deno task` first caches every npm package
 * of deno.json, and fails offline.
 */
import { type AutotuneMode, requestGpu } from "../../gpu/device.ts";
import { presetConfig } from "../../model/config.ts";
import { type Precision, PRECISIONS } from "../../model/precision.ts";
import { type FlagSpecs, formatHelp, parseFlags, UsageError } from "../flags.ts";
import { AUTOTUNE_FLAG } from "../autotune_flag.ts";
import { Budget, Reporter, type StageContext } from "./gpu_report.ts";
import { type CeilingSizes, measureCeilings, reportAdapter } from "./gpu_ceilings.ts";
import { measureMatmuls, measureOps, type OpShape } from "./gpu_ops.ts";
import { measureSteps, measureTorch, type StepShapes } from "./gpu_step.ts";

/** The flags of `bench gpu`. */
export const BENCH_GPU_FLAGS = {
  smoke: {
    type: "boolean",
    default: false,
    help: "tiny shapes (the tiny model, T=32): checks the benchmark on a software adapter",
  },
  out: { type: "string", help: "append one JSON line per measurement to this file" },
  precision: {
    type: "string",
    default: PRECISIONS.join(","),
    help: `comma-separated precisions of the kernels and steps (${PRECISIONS.join(", ")})`,
  },
  "budget-s": {
    type: "number",
    min: 1,
    help: "seconds for the whole run; each stage gets a share, what does not fit is skipped",
    defaultText: "450, or 100 with --smoke",
  },
  // What training gets (train's default is cached); a smoke run leaves the cache alone.
  autotune: { ...AUTOTUNE_FLAG, defaultText: "cached, or off with --smoke" },
} as const satisfies FlagSpecs;

/** Each stage's share of the budget (time one leaves unused goes to the later ones). */
const STAGE_WEIGHTS = { ceilings: 1, matmul: 5, ops: 3, step: 7, pytorch: 4 };

/** Shapes of a full run (GPT-2 124M, as trained) and of a smoke run. */
interface Plan {
  ceilings: CeilingSizes;
  ops: OpShape;
  steps: StepShapes;
  trials: number;
  /** See {@link StageContext.minSubmitS}. */
  minSubmitS: number;
}

function plan(smoke: boolean): Plan {
  if (smoke) {
    // The vocabulary shrunk too: the classifier would dominate a software adapter's minute.
    const config = presetConfig("tiny", { vocabSize: 500 });
    return {
      ceilings: { fmaWorkgroups: 8, fmaIterations: 8, copyBytes: 1 << 20, copyRepeats: 2 },
      ops: { config, B: 2, T: 32 },
      steps: { config, T: 32, batchSizes: [1, 4] },
      trials: 1,
      minSubmitS: 0.0005,
    };
  }
  const config = presetConfig("gpt2");
  return {
    // ~1.1 TFLOP per FMA dispatch (~16 ms at the H100's 67 TFLOP/s); 64 copies of 256 MiB.
    ceilings: { fmaWorkgroups: 16384, fmaIterations: 512, copyBytes: 1 << 28, copyRepeats: 64 },
    ops: { config, B: 16, T: 1024 },
    steps: { config, T: 1024, batchSizes: [16, 64] },
    trials: 3,
    minSubmitS: 0.02,
  };
}

function parsePrecisions(value: string): Precision[] {
  const list = value.split(",").map((p) => p.trim());
  const bad = list.find((p) => !(PRECISIONS as readonly string[]).includes(p));
  if (bad !== undefined) {
    throw new UsageError(`--precision ${value}: "${bad}" is not one of ${PRECISIONS.join(", ")}`);
  }
  return [...new Set(list)] as Precision[];
}

/** Entry point of `deno task bench gpu`. */
export async function main(args: string[]): Promise<void> {
  const { values, help } = parseFlags(args, BENCH_GPU_FLAGS);
  if (help) {
    console.log(formatHelp("deno task bench gpu [flags]", BENCH_GPU_FLAGS));
    return;
  }
  const precisions = parsePrecisions(values.precision);
  const smoke = values.smoke;
  const p = plan(smoke);
  const seconds = values["budget-s"] ?? (smoke ? 100 : 450);
  const budget = new Budget(seconds, STAGE_WEIGHTS);
  const report = await Reporter.open(values.out);
  const start = performance.now();
  try {
    const autotune = (values.autotune ?? (smoke ? "off" : "cached")) as AutotuneMode;
    const gpu = await requestGpu({ autotune });
    console.log(
      `bench gpu${smoke ? " --smoke" : ""}: budget ${seconds} s, precisions ${
        precisions.join(",")
      }, autotune ${autotune}`,
    );
    await reportAdapter(gpu, report);
    const ctx: StageContext = { gpu, report, budget, trials: p.trials, minSubmitS: p.minSubmitS };
    const ceilings = await measureCeilings(ctx, p.ceilings);
    ctx.f32Ceiling = ceilings.f32;
    ctx.copyGbps = ceilings.copyGbps;
    await measureMatmuls(ctx, p.ops, precisions);
    await measureOps(ctx, p.ops, precisions);
    await measureSteps(ctx, p.steps, precisions);
    await measureTorch(ctx, p.steps, { cpu: smoke && gpu.isFallback });
  } finally {
    report.close();
  }
  const failed = report.failures;
  console.log(
    `\nbench gpu: ${report.all.length} lines in ${
      ((performance.now() - start) / 1e3).toFixed(0)
    } s` +
      `${values.out ? `, appended to ${values.out}` : ""}${failed ? `; ${failed} FAILED` : ""}`,
  );
  if (failed) throw new Error(`bench gpu: ${failed} measurements failed (see FAILED above)`);
}

if (import.meta.main) await main(Deno.args);

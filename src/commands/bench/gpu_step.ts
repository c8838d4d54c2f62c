/**
 * `bench gpu`'s last stages: the whole training micro-step (forward, classifier, backward) of
 * GPT2 in each precision at each batch size, in tokens/s and MFU; then, where PyTorch with CUDA
 * is importable, the same micro-step in PyTorch (fp32 with TF32 off, and bf16 autocast) in the
 * same run, with repgpt's speed as a ratio of it.
 */
import type { GPT2Config } from "../../model/config.ts";
import { GPT2 } from "../../model/gpt2.ts";
import type { Precision } from "../../model/precision.ts";
import { peakTflops, trainingFlopsPerToken } from "../../train/mfu.ts";
import { timeGpu } from "./kernels.ts";
import type { Measurement, StageContext } from "./gpu_report.ts";
import torchScript from "./gpu_torch.py" with { type: "text" };

/** The micro-steps to time: one config, a sequence length and several batch sizes. */
export interface StepShapes {
  config: GPT2Config;
  T: number;
  batchSizes: number[];
}

const STEP = "step";

/** Times `zeroGrads + step` of a fresh model per (batch size, precision). */
export async function measureSteps(
  ctx: StageContext,
  shapes: StepShapes,
  precisions: Precision[],
): Promise<void> {
  const { config, T } = shapes;
  ctx.report.stage(STEP, "training micro-step: forward, classifier, backward");
  if (!ctx.budget.begin(STEP)) {
    ctx.report.skip(STEP, "train micro-step", "no time left in the budget");
    return;
  }
  const flopsPerToken = trainingFlopsPerToken(config, T);
  const peak = peakTflops(ctx.gpu.name);
  for (const B of shapes.batchSizes) {
    for (const precision of precisions) {
      const line: Measurement = {
        stage: STEP,
        name: "train micro-step",
        precision,
        shape: `B=${B} T=${T}`,
      };
      const need = estimateSeconds(ctx, precision, B);
      if (ctx.budget.left() < need) {
        ctx.report.skip(
          STEP,
          line.name,
          `would take ~${need.toFixed(0)} s, ${ctx.budget.left().toFixed(0)} s left`,
          line,
        );
        continue;
      }
      let model: GPT2 | undefined;
      try {
        model = await GPT2.create(ctx.gpu, config, { B, T, precision });
        // Zero weights: kernel times do not depend on values, and initializing 124M normals
        // would cost seconds of CPU.
        const tokens = Uint32Array.from(
          { length: B * T + 1 },
          (_, i) => (i * 7919) % config.vocabSize,
        );
        model.uploadBatch(tokens.subarray(0, B * T), tokens.subarray(1));
        const m = model;
        const s = await timeGpu(ctx.gpu, () => {
          m.zeroGrads();
          m.step();
        }, ctx.trials);
        const tflops = flopsPerToken * B * T / s / 1e12;
        ctx.report.record({
          ...line,
          ms: s * 1e3,
          tokens_per_s: B * T / s,
          tflops,
          ...(ctx.f32Ceiling ? { share_f32_ceiling: tflops / ctx.f32Ceiling } : {}),
          ...(peak ? { mfu: tflops / peak } : {}),
          activation_mib: model.activationBytes / 2 ** 20,
        });
      } catch (e) {
        ctx.report.record({ ...line, error: (e as Error).message.split("\n")[0] });
      } finally {
        model?.destroy();
      }
    }
  }
}

/**
 * Seconds a step measurement needs, from the same precision's step at a smaller batch (time
 * grows with B): the trials, the first call and ~5 s to build the model. 0 when unknown.
 */
function estimateSeconds(ctx: StageContext, precision: string, B: number): number {
  const earlier = ctx.report.all.filter((m) =>
    m.stage === STEP && m.precision === precision && m.ms !== undefined
  );
  const last = earlier.at(-1);
  if (!last) return 0;
  const lastB = Number(/B=(\d+)/.exec(last.shape ?? "")?.[1]);
  return last.ms! / 1e3 * (B / lastB) * (ctx.trials + 2) + 5;
}

/** PyTorch's dtype matched with repgpt's precision of the same name. */
const TORCH_DTYPES: Record<string, Precision> = { fp32: "f32", bf16: "bf16" };

/**
 * Runs gpu_torch.py (fed on stdin) when `python3` imports torch with CUDA, or with `cpu` (a
 * smoke run on a software adapter, which is the CPU too) without it; records its steps.
 */
export async function measureTorch(
  ctx: StageContext,
  shapes: StepShapes,
  { cpu = false } = {},
): Promise<void> {
  const stage = "pytorch";
  ctx.report.stage(stage, "the same micro-step in PyTorch (eager), for the ratio");
  const found = await torchDevice();
  const device = found === "cuda" || (found === "cpu" && cpu) ? found : undefined;
  if (!device) {
    const why = found === "cpu" ? "PyTorch is importable but sees no CUDA device" : found;
    ctx.report.skip(stage, "train micro-step", why);
    return;
  }
  const seconds = ctx.budget.begin(stage, 30);
  if (!seconds) {
    ctx.report.skip(stage, "train micro-step", "fewer than 30 s left in the budget");
    return;
  }
  const { config, T } = shapes;
  const args = [
    "-",
    `--layers=${config.numLayers}`,
    `--heads=${config.numHeads}`,
    `--channels=${config.channels}`,
    `--vocab=${config.paddedVocabSize}`,
    `--seq-len=${T}`,
    `--batch-sizes=${shapes.batchSizes.join(",")}`,
    `--dtypes=${Object.keys(TORCH_DTYPES).join(",")}`,
    `--budget-s=${Math.floor(seconds - 5)}`,
    `--device=${device}`,
  ];
  let result: Deno.CommandOutput;
  try {
    const child = new Deno.Command("python3", {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(seconds * 1000 + 10_000),
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(torchScript));
    await writer.close();
    result = await child.output();
  } catch (e) {
    ctx.report.record({ stage, name: "gpu_torch.py", error: (e as Error).message });
    return;
  }
  const { code, stdout, stderr } = result;
  const lines = new TextDecoder().decode(stdout).split("\n").filter((l) => l.startsWith("{"));
  const peak = peakTflops(ctx.gpu.name);
  const flopsPerToken = trainingFlopsPerToken(config, T);
  for (const l of lines) {
    const r = JSON.parse(l) as {
      dtype: string;
      B: number;
      ms?: number;
      skipped?: string;
      error?: string;
    };
    const line: Measurement = {
      stage,
      name: "train micro-step (PyTorch)",
      precision: r.dtype,
      shape: `B=${r.B} T=${T}`,
      device,
    };
    if (r.ms === undefined) {
      ctx.report.record(r.skipped ? { ...line, skipped: r.skipped } : { ...line, error: r.error });
      continue;
    }
    const tokens = r.B * T / (r.ms / 1e3), tflops = flopsPerToken * tokens / 1e12;
    const ours = ctx.report.all.find((m) =>
      m.stage === STEP && m.precision === TORCH_DTYPES[r.dtype] && m.shape === line.shape
    )?.tokens_per_s;
    ctx.report.record({
      ...line,
      ms: r.ms,
      tokens_per_s: tokens,
      tflops,
      ...(ctx.f32Ceiling ? { share_f32_ceiling: tflops / ctx.f32Ceiling } : {}),
      ...(peak ? { mfu: tflops / peak } : {}),
      ...(ours
        ? { repgpt_ratio: ours / tokens, note: `repgpt ${(ours / tokens).toFixed(2)}x` }
        : {}),
    });
  }
  if (code !== 0 || lines.length === 0) {
    const tail = new TextDecoder().decode(stderr).trim().split("\n").slice(-3).join(" | ");
    ctx.report.record({ stage, name: "gpu_torch.py", error: `exit ${code}: ${tail}` });
  }
}

/** "cuda" or "cpu" as `python3`'s torch sees it, or why it cannot run (for the skip line). */
async function torchDevice(): Promise<string> {
  try {
    const { code } = await new Deno.Command("python3", {
      args: ["-c", "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)"],
      stdout: "null",
      stderr: "null",
      signal: AbortSignal.timeout(60_000),
    }).output();
    return code === 0 ? "cuda" : code === 3 ? "cpu" : "python3 cannot import torch";
  } catch {
    return "no python3 on PATH";
  }
}

/**
 * `deno task bench model`: time of the whole GPT-2 on this adapter: one training micro-step
 * (forward + fused classifier + backward), the eval forward, and the optimizer step (grad norm
 * + AdamW over every parameter), with tokens/s and MFU. Prints measurements, never pass/fail.
 *
 *   --model NAME        preset (default gpt2 on a GPU, tiny on a software adapter)
 *   --batch-size B      --seq-len T   (default 16 x 1024 on a GPU, 1 x 64 on a software adapter)
 *   --trials K          timed trials, the median is printed (default 3)
 *   --precision LIST    comma-separated precisions, each measured in turn and compared in a
 *                       last table (default f32,bf16)
 *   --autotune MODE     off | cached | refresh: the matmul configurations (default off: the
 *                       fixed defaults are measured unless tuning is asked for)
 */
import { parseArgs } from "node:util";
import { requestGpu } from "../../gpu/device.ts";
import { autotuneMode } from "../autotune_flag.ts";
import { presetConfig } from "../../model/config.ts";
import { GPT2 } from "../../model/gpt2.ts";
import { type Precision, PRECISIONS } from "../../model/precision.ts";
import { peakTflops, trainingFlopsPerToken } from "../../train/mfu.ts";
import { timeGpu } from "./kernels.ts";

/** Entry point of `deno task bench model`. */
export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: "string" },
      "batch-size": { type: "string" },
      "seq-len": { type: "string" },
      trials: { type: "string" },
      precision: { type: "string", default: "f32,bf16" },
      autotune: { type: "string", default: "off" },
    },
    strict: true,
  });
  const gpu = await requestGpu({ log: true, autotune: autotuneMode(values.autotune) });
  const preset = values.model ?? (gpu.isFallback ? "tiny" : "gpt2");
  const config = presetConfig(preset);
  const int = (flag: string, value: string | undefined, fallback: number) => {
    const n = value === undefined ? fallback : Number(value);
    if (!Number.isInteger(n) || n < 1) {
      throw new Error(`--${flag} ${value}: expected an integer >= 1`);
    }
    return n;
  };
  const B = int("batch-size", values["batch-size"], gpu.isFallback ? 1 : 16);
  const T = int("seq-len", values["seq-len"], gpu.isFallback ? 64 : 1024);
  const trials = int("trials", values.trials, 3);
  const precisions = values.precision.split(",") as Precision[];
  const bad = precisions.find((p) => !PRECISIONS.includes(p));
  if (bad !== undefined) {
    throw new Error(`--precision ${values.precision}: "${bad}" is not one of ${PRECISIONS}`);
  }

  const rows: { precision: Precision; train: number; activations: number }[] = [];
  for (const precision of precisions) {
    console.log(`\n-- precision ${precision}`);
    rows.push({ precision, ...await benchPrecision(precision) });
  }
  const f32 = rows.find((r) => r.precision === "f32");
  console.log("\nprecision | train micro-step ms | speedup vs f32 | activation MiB | vs f32");
  for (const r of rows) {
    const vs = (x: number, y: number | undefined) => y ? (x / y).toFixed(2) + "x" : "-";
    console.log(
      `${r.precision.padEnd(9)} | ${(r.train * 1e3).toFixed(1).padStart(18)} | ` +
        `${vs(f32?.train ?? 0, r.train).padStart(14)} | ` +
        `${(r.activations / 2 ** 20).toFixed(1).padStart(14)} | ${
          vs(r.activations, f32?.activations)
        }`,
    );
  }

  async function benchPrecision(precision: Precision) {
    const model = await GPT2.create(gpu, config, { B, T, precision });
    try {
      // The weights stay zero: kernel times do not depend on the values, and initParams' 124M
      // normals would cost ~20 s of CPU first.
      await model.setOptimizer({
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weightDecay: 0.1,
        gradClip: 1,
      });
      const tokens = Uint32Array.from(
        { length: B * T + 1 },
        (_, i) => (i * 7919) % config.vocabSize,
      );
      model.uploadBatch(tokens.slice(0, B * T), tokens.slice(1));
      const peak = peakTflops(gpu.name);
      const flops = trainingFlopsPerToken(config, T) * B * T;
      const report = (label: string, s: number, f: number) => {
        const mfu = peak ? `, MFU ${(f / s / (peak * 1e12) * 100).toFixed(1)}%` : "";
        console.log(
          `${label}: ${(s * 1e3).toFixed(1)} ms, ${(B * T / s).toFixed(0)} tokens/s, ` +
            `${(f / s / 1e9).toFixed(1)} GFLOP/s${mfu}`,
        );
      };
      console.log(
        `model ${
          values.model ?? config.numLayers + "L"
        }: ${model.layout.numParameters} parameters, ` +
          `B=${B} T=${T}, ${(flops / 1e9).toFixed(1)} GFLOP per micro-step`,
      );
      const train = await timeGpu(gpu, () => {
        model.zeroGrads();
        model.step();
      }, trials);
      report("train micro-step (fwd + bwd)", train, flops);
      console.log(`activation memory: ${(model.activationBytes / 2 ** 20).toFixed(1)} MiB`);
      report("eval forward", await timeGpu(gpu, () => model.evalStep(), trials), flops / 3);
      const t = { step: 0 };
      const opt = await timeGpu(gpu, () => model.optimizerStep(++t.step, 1e-4), trials);
      console.log(`optimizer step (grad norm + AdamW): ${(opt * 1e3).toFixed(1)} ms`);
      const loss = await model.readLoss();
      console.log(
        `eval loss ${loss.toFixed(4)} (zero weights: ln V = ${
          Math.log(config.vocabSize).toFixed(4)
        })`,
      );
      return { train, activations: model.activationBytes };
    } finally {
      model.destroy();
    }
  }
}

if (import.meta.main) await main(Deno.args);

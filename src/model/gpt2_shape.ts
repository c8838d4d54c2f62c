/**
 * The batch geometry a GPT-2 is built for ({@link GPT2Shape}) and the checks that a shape fits
 * the model and the device, with errors that say which value and why.
 */
import type { Gpu } from "../gpu/device.ts";
import { storageBytes, type StorageType } from "../gpu/storage.ts";
import type { GPT2Config } from "./config.ts";
import type { Precision } from "./precision.ts";

/** Batch geometry the model is built for. */
export interface GPT2Shape {
  /** Sequences per micro-batch. */
  B: number;
  /** Tokens per sequence (at most config.maxSeqLen). */
  T: number;
  /**
   * Micro-steps per optimizer step (default 1): the loss gradient is scaled by
   * 1 / (B*T*gradAccumSteps), so the accumulated gradient is that of the mean loss.
   */
  gradAccumSteps?: number;
  /**
   * Optimizer steps whose loss and grad norm are kept on the GPU between reads (default 1):
   * the trainer reads them all back with one wait every `historySteps` steps.
   */
  historySteps?: number;
  /** Storage of activations, their gradients and the weight copy (default f32). */
  precision?: Precision;
  /**
   * f16's dynamic loss scaling: the initial scale (default 2^16) and the good steps in a row
   * that double it (default 2000), PyTorch GradScaler's defaults; the steps skipped so far
   * (default 0; a resumed run carries its count on).
   */
  lossScale?: { initial?: number; growthInterval?: number; skippedSteps?: number };
}

/** Throws a RangeError naming the first value of the shape that does not fit. */
export function checkShape(
  gpu: Gpu,
  config: GPT2Config,
  { B, T, gradAccumSteps, historySteps, type, initialScale }: {
    B: number;
    T: number;
    gradAccumSteps: number;
    historySteps: number;
    type: StorageType;
    initialScale: number;
  },
): void {
  if (!(initialScale > 0 && Number.isFinite(initialScale))) {
    throw new RangeError(
      `model: the initial loss scale must be finite and > 0, got ${initialScale}`,
    );
  }
  if (!Number.isInteger(B) || B < 1) throw new RangeError(`model: B must be >= 1, got ${B}`);
  if (!Number.isInteger(T) || T < 1 || T > config.maxSeqLen) {
    throw new RangeError(`model: T must be in [1, ${config.maxSeqLen}], got ${T}`);
  }
  if (!Number.isInteger(gradAccumSteps) || gradAccumSteps < 1) {
    throw new RangeError(`model: gradAccumSteps must be >= 1, got ${gradAccumSteps}`);
  }
  // GELU, LayerNorm and the residual adds bind whole activations; matmul, attention and the
  // classifier split theirs. The largest unsplit one is the MLP's (B,T,4C).
  const mlpBytes = storageBytes(type, B * T * 4 * config.channels);
  if (mlpBytes > gpu.maxBinding) {
    throw new RangeError(
      `model: B*T = ${B}*${T} makes the MLP activation (B,T,4C) ${mlpBytes} bytes, over this ` +
        `device's ${gpu.maxBinding}-byte binding limit; use a smaller --batch-size or --seq-len`,
    );
  }
  if (config.layerNormEps !== 1e-5) {
    throw new Error(
      `model: the LayerNorm kernels use eps 1e-5, config has ${config.layerNormEps}`,
    );
  }
  if (!Number.isInteger(historySteps) || historySteps < 1) {
    throw new RangeError(`model: historySteps must be >= 1, got ${historySteps}`);
  }
}

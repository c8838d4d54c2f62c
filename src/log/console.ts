/**
 * The trainer's console lines, in llm.c/nanoGPT style, as pure functions:
 *
 *   step    42/90000 | loss 5.123456 | lr 1.00e-02 | norm 1.2345 | 312.4 ms | 52,430 tok/s | MFU 41.2%
 *   step  1000/90000 | val loss 3.456789 | 100 batches | 2.31 s
 *
 * The step is right-aligned to the width of `maxSteps` so columns line up for the whole run.
 */

import { formatDuration } from "./progress.ts";

/** What one training step reports. */
export interface StepLine {
  step: number;
  /** The run's step count; null while a --time-budget run is still timing its first steps. */
  maxSteps: number | null;
  /** Mean training loss of the step (over all micro-batches and ranks). */
  loss: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Wall time of the step in milliseconds. */
  ms: number;
  tokensPerS: number;
  /** Model FLOPs utilization as a fraction of peak (0.412 prints 41.2%); omitted if unknown. */
  mfu?: number;
  /** Estimated seconds to the end of the run; omitted if unknown. */
  etaSeconds?: number;
  /** f16's dynamic loss scale and the steps it skipped so far; omitted in other precisions. */
  lossScale?: { scale: number; skippedSteps: number };
}

/** What one evaluation reports. */
export interface EvalLine {
  step: number;
  maxSteps: number | null;
  valLoss: number;
  batches: number;
  /** Wall time of the evaluation in seconds. */
  seconds: number;
}

/** `step    42/90000 | loss 5.123456 | lr 1.00e-02 | norm 1.2345 | 312.4 ms | 52,430 tok/s`. */
export function formatStepLine(s: StepLine): string {
  const parts = [
    stepPrefix(s.step, s.maxSteps),
    `loss ${s.loss.toFixed(6)}`,
    `lr ${formatExp(s.lr)}`,
    `norm ${s.gradNorm.toFixed(4)}`,
    `${s.ms.toFixed(1)} ms`,
    `${formatThousands(s.tokensPerS)} tok/s`,
  ];
  if (s.mfu !== undefined) parts.push(`MFU ${(s.mfu * 100).toFixed(1)}%`);
  if (s.lossScale) {
    parts.push(`scale ${s.lossScale.scale} (${s.lossScale.skippedSteps} skipped)`);
  }
  if (s.etaSeconds !== undefined) parts.push(`ETA ${formatDuration(s.etaSeconds)}`);
  return parts.join(" | ");
}

/** `step  1000/90000 | val loss 3.456789 | 100 batches | 2.31 s`. */
export function formatEvalLine(e: EvalLine): string {
  return [
    stepPrefix(e.step, e.maxSteps),
    `val loss ${e.valLoss.toFixed(6)}`,
    `${e.batches} batches`,
    `${e.seconds.toFixed(2)} s`,
  ].join(" | ");
}

/** HellaSwag at an eval: `step  40/300 | hellaswag acc_norm 0.2650 acc 0.2600 | 200 examples | 3.10 s`. */
export function formatHellaSwagLine(
  h: {
    step: number;
    maxSteps: number | null;
    acc: number;
    accNorm: number;
    examples: number;
    seconds: number;
  },
): string {
  return [
    stepPrefix(h.step, h.maxSteps),
    `hellaswag acc_norm ${h.accNorm.toFixed(4)} acc ${h.acc.toFixed(4)}`,
    `${h.examples} examples`,
    `${h.seconds.toFixed(2)} s`,
  ].join(" | ");
}

/** An integer with comma thousands separators, independent of the locale: 52430.4 -> "52,430". */
export function formatThousands(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const digits = Math.round(Math.abs(x)).toString();
  const grouped = digits.replace(/\B(?=(\d{3})+$)/g, ",");
  return x < 0 && grouped !== "0" ? `-${grouped}` : grouped;
}

/** C's `%.2e`: 0.01 -> "1.00e-02", 6e-4 -> "6.00e-04", 0 -> "0.00e+00". */
export function formatExp(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const [mantissa, exp] = x.toExponential(2).split("e");
  const e = Number(exp);
  return `${mantissa}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
}

function stepPrefix(step: number, maxSteps: number | null): string {
  const of = String(maxSteps ?? "?");
  return `step ${String(step).padStart(of.length)}/${of}`;
}

/**
 * Learning-rate schedule of the seed recipe: linear warmup, then cosine decay to `minLr` at
 * `maxSteps` (llm.c's form: step s of warmup W uses lr * (s + 1) / W).
 */

/** Schedule parameters. */
export interface Schedule {
  maxLr: number;
  minLr: number;
  warmupSteps: number;
  maxSteps: number;
}

/** Learning rate at 0-based `step`. */
export function learningRate(step: number, s: Schedule): number {
  if (step < s.warmupSteps) return s.maxLr * (step + 1) / s.warmupSteps;
  if (step >= s.maxSteps) return s.minLr;
  const decaySteps = s.maxSteps - s.warmupSteps;
  const ratio = decaySteps > 0 ? (step - s.warmupSteps) / decaySteps : 1;
  const coeff = 0.5 * (1 + Math.cos(Math.PI * ratio));
  return s.minLr + coeff * (s.maxLr - s.minLr);
}

/**
 * `s` with its peak moved to `maxLr` and its floor in the same proportion: the same warmup
 * and cosine for a second learning rate (Muon's beside AdamW's).
 */
export function scaledSchedule(s: Schedule, maxLr: number): Schedule {
  return { ...s, maxLr, minLr: s.maxLr > 0 ? s.minLr * maxLr / s.maxLr : 0 };
}

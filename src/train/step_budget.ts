/**
 * Sizing a run by time (`--time-budget`, the cpu recipe's default): software adapters differ
 * several-fold in speed, so a fixed step count would end in 7 minutes on one machine and 30 on
 * another. The run times its first steps, then fixes `--max-steps` once, prints it, and trains
 * like a run given that `--max-steps`: the steps it timed lie inside the lr warmup, whose
 * learning rates do not depend on the step count, so the two runs are bit-identical.
 */
import type { Gpu } from "../gpu/device.ts";
import type { Communicator } from "../distributed/communicator.ts";

/** What a run has measured when it fixes its step count. */
export interface StepTiming {
  /** Seconds for the whole run, counted from the process start (data preparation included). */
  budgetS: number;
  /** Seconds since the process started. */
  elapsedS: number;
  /** Steps done so far. */
  stepsDone: number;
  /** Seconds per optimizer step, logging included. */
  stepS: number;
  /** Seconds per eval (0 without evals). */
  evalS: number;
  /** Steps between evals (0: none). */
  evalInterval: number;
  /** Seconds of work after the last step: the final eval and the sample. */
  finalS: number;
}

/**
 * Share of the time left that steps are planned into: a software adapter's step time drifts by
 * 10-40% over minutes on a shared machine (a 10-minute plan from the warmup's steps ran 11:08
 * when steps 101-300 took 1.4x as long), and the checkpoints' writes are not counted.
 */
const PLAN_SHARE = 0.93;

/** The step count that ends the run within its budget: at least the steps already done. */
export function stepsForBudget(t: StepTiming): number {
  const perStep = t.stepS + (t.evalInterval > 0 ? t.evalS / t.evalInterval : 0);
  const left = (t.budgetS - t.elapsedS - t.finalS) * PLAN_SHARE;
  return t.stepsDone + Math.max(0, Math.floor(left / perStep));
}

/**
 * The step after which the count is fixed: the warmup's last, up to step 20, so that the rates
 * of the steps before it do not depend on the count (a warmup of 0 leaves step 1, whose rate is
 * the peak either way).
 */
export function stepsToTime(warmupSteps: number): number {
  return Math.max(1, Math.min(20, warmupSteps));
}

/**
 * The step after which the clock starts: up to 10 steps before {@link stepsToTime}'s, never
 * step 0 when there are others, since the first steps pay for first use (0: from the start).
 */
export function clockFrom(lastTimed: number): number {
  return lastTimed > 1 ? Math.max(1, lastTimed - 10) : 0;
}

/** The line printed when the count is fixed. */
export function describeSizing(t: StepTiming, steps: number, timedSteps: string): string {
  return `time budget ${t.budgetS} s (--time-budget): ${t.stepS.toFixed(2)} s per step ` +
    `(${timedSteps}), ${t.evalS.toFixed(1)} s per eval, ${t.finalS.toFixed(0)} s to finish, ` +
    `${t.elapsedS.toFixed(0)} s gone -> ${steps} steps (--max-steps ${steps} reproduces this run)`;
}

/** Work after the last step besides the final eval: the checkpoint write, with room to spare. */
const FINISH_MARGIN_S = 5;

/**
 * Times a fresh run's first steps, every rank alike. Call {@link afterStep} after each step's
 * work is submitted; it waits for the GPU while timing and, after the last timed step, fixes
 * the count from rank 0's measurements (broadcast, so every rank fixes the same one).
 */
export class StepSizer {
  readonly timedSteps: number;
  /** The step after which the clock starts (0: at construction). */
  readonly clockFrom: number;
  #clockStart = 0;

  constructor(
    readonly budgetS: number,
    warmupSteps: number,
    readonly costs: {
      gpu: Gpu;
      comm: Communicator;
      /** Seconds of one eval (0 without evals) and steps between evals. */
      evalS: number;
      evalInterval: number;
      /** Seconds of the sample at the end (0 without one). */
      sampleS: number;
    },
  ) {
    this.timedSteps = stepsToTime(warmupSteps);
    this.clockFrom = clockFrom(this.timedSteps);
    this.#clockStart = performance.now(); // step 1's start, when it is the only one timed
  }

  /**
   * After step `step` (1-based) is submitted: null, or once the last timed step is done, the
   * step count and the line that reports it.
   */
  async afterStep(step: number): Promise<{ steps: number; line: string } | null> {
    const { gpu, comm, evalS, evalInterval, sampleS } = this.costs;
    if (step !== this.clockFrom && step !== this.timedSteps) return null;
    await gpu.device.queue.onSubmittedWorkDone();
    const now = performance.now();
    if (step === this.clockFrom) this.#clockStart = now;
    if (step < this.timedSteps) return null;
    const timed = this.timedSteps - this.clockFrom;
    // performance.now() counts from the process start.
    const measured = new Float32Array([(now - this.#clockStart) / 1000 / timed, now / 1000]);
    await comm.broadcast(measured, 0);
    const timing = {
      budgetS: this.budgetS,
      elapsedS: measured[1],
      stepsDone: step,
      stepS: measured[0],
      evalS,
      evalInterval,
      finalS: evalS + sampleS + FINISH_MARGIN_S,
    };
    const steps = stepsForBudget(timing);
    const range = timed > 1 ? `steps ${this.clockFrom + 1}-${step}` : `step ${step}`;
    return { steps, line: describeSizing(timing, steps, range) };
  }
}

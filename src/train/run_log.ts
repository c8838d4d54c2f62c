/**
 * Where a training run reports, on rank 0 only: the console line, `OUT/metrics.jsonl` and
 * TensorBoard event files in `OUT/tensorboard` with the seed's tags (`Loss/train`, `Loss/eval`,
 * `learning_rate`) plus `grad_norm`, `tokens_per_s` and, when scored, `HellaSwag/acc_norm`.
 */
import { join } from "node:path";
import {
  formatEvalLine,
  formatHellaSwagLine,
  formatStepLine,
  type StepLine,
} from "../log/console.ts";
import { MetricsWriter } from "../log/metrics.ts";
import { TensorBoardWriter } from "../log/tensorboard.ts";

/** One optimizer step's numbers (`step` counts updates done, 1-based). */
export type StepReport = Omit<StepLine, "maxSteps">;

/** Console + metrics.jsonl + TensorBoard for one run. */
export class RunLog {
  /** For the end-of-run summary. */
  lastLoss: number | undefined;
  firstValLoss: number | undefined;
  lastValLoss: number | undefined;

  private constructor(
    /** The run's step count, shown in every line; null until --time-budget has fixed it. */
    public maxSteps: number | null,
    readonly metrics: MetricsWriter,
    readonly tensorboard: TensorBoardWriter,
  ) {}

  /**
   * Open the run's outputs in `out`. With `resumeStep`, metrics after that step are dropped
   * and TensorBoard is told to purge them, so a resumed run's curves continue seamlessly.
   */
  static async open(
    out: string,
    maxSteps: number | null,
    resumeStep: number | null,
  ): Promise<RunLog> {
    const metrics = await MetricsWriter.open(join(out, "metrics.jsonl"), { resumeStep });
    if (metrics.torn) {
      console.warn(`warning: ${metrics.path}: dropped a torn last line (a run killed mid-write)`);
    }
    const tensorboard = TensorBoardWriter.create(join(out, "tensorboard"), {
      purgeStep: resumeStep === null ? undefined : resumeStep + 1,
    });
    return new RunLog(maxSteps, metrics, tensorboard);
  }

  /** A console line. */
  say(line: string): void {
    console.log(line);
  }

  /** A warning, on stderr. */
  warn(line: string): void {
    console.warn(line);
  }

  step(s: StepReport): void {
    console.log(formatStepLine({ ...s, maxSteps: this.maxSteps }));
    this.metrics.write({
      step: s.step,
      train_loss: s.loss,
      lr: s.lr,
      grad_norm: s.gradNorm,
      ms: s.ms,
      tokens_per_s: s.tokensPerS,
      mfu: s.mfu,
      loss_scale: s.lossScale?.scale,
      skipped_steps: s.lossScale?.skippedSteps,
    });
    this.lastLoss = s.loss;
    this.tensorboard.scalars(s.step, {
      "Loss/train": s.loss,
      learning_rate: s.lr,
      grad_norm: s.gradNorm,
      tokens_per_s: s.tokensPerS,
      ...(s.lossScale ? { loss_scale: s.lossScale.scale } : {}),
    });
  }

  eval(step: number, valLoss: number, batches: number, seconds: number): void {
    console.log(formatEvalLine({ step, maxSteps: this.maxSteps, valLoss, batches, seconds }));
    this.metrics.write({ step, val_loss: valLoss });
    this.firstValLoss ??= valLoss;
    this.lastValLoss = valLoss;
    this.tensorboard.scalars(step, { "Loss/eval": valLoss });
  }

  /** HellaSwag accuracy at `step` (over `examples`, scored in `seconds`). */
  hellaswag(step: number, acc: number, accNorm: number, examples: number, seconds: number): void {
    const maxSteps = this.maxSteps;
    console.log(formatHellaSwagLine({ step, maxSteps, acc, accNorm, examples, seconds }));
    this.metrics.write({ step, hellaswag_acc: acc, hellaswag_acc_norm: accNorm });
    this.tensorboard.scalars(step, { "HellaSwag/acc_norm": accNorm });
  }

  close(): void {
    this.metrics.close();
    this.tensorboard.close();
  }
}

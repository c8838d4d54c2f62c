/**
 * Loss and grad norm of recent optimizer steps, kept on the GPU so that the steps in between
 * never wait: each optimizer step copies its records into a ring, and the trainer reads the
 * ring back with one wait every few steps.
 */
import type { Gpu } from "../gpu/device.ts";
import { readF32 } from "../gpu/buffer.ts";

/** What one optimizer step reports. */
export interface StepStats {
  /** Mean training loss over the step's micro-batches. */
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** f16's loss scale after the step and the steps skipped so far (absent in other precisions). */
  lossScale?: { scale: number; skippedSteps: number };
}

/**
 * A ring of `steps` records, each a step's micro-step mean losses (`gradAccumSteps` floats),
 * its grad norm and, for f16, the loss-scale state (scale, good steps, skipped steps); the newest
 * `#pending` await {@link StepHistory.read}.
 */
export class StepHistory {
  #pending = 0;
  #next = 0;

  /** `ring` holds `steps * recordFloats(...)` floats; its owner destroys it. */
  constructor(
    readonly gpu: Gpu,
    readonly ring: GPUBuffer,
    readonly steps: number,
    readonly gradAccumSteps: number,
    /** The f16 loss-scale buffer [scale, good steps, skipped steps], copied with each record. */
    readonly lossScale: GPUBuffer | null,
  ) {}

  /** Floats per record. */
  static recordFloats(gradAccumSteps: number, withLossScale: boolean): number {
    return gradAccumSteps + 1 + (withLossScale ? 3 : 0);
  }

  /**
   * Encode the copy of this step's record: `losses` (a float per micro-step), the norm (the
   * first float of `normScale`) and the loss-scale state.
   */
  record(encoder: GPUCommandEncoder, losses: GPUBuffer, normScale: GPUBuffer): void {
    const A = this.gradAccumSteps;
    const at = this.#next * StepHistory.recordFloats(A, this.lossScale !== null) * 4;
    encoder.copyBufferToBuffer(losses, 0, this.ring, at, A * 4);
    encoder.copyBufferToBuffer(normScale, 0, this.ring, at + A * 4, 4);
    if (this.lossScale) {
      encoder.copyBufferToBuffer(this.lossScale, 0, this.ring, at + A * 4 + 4, 12);
    }
    this.#next = (this.#next + 1) % this.steps;
    this.#pending = Math.min(this.#pending + 1, this.steps);
  }

  /** The records since the last read (the newest `steps` of them), oldest first. Waits. */
  async read(): Promise<StepStats[]> {
    const all = await readF32(this.gpu, this.ring);
    this.gpu.throwIfFailed("model step");
    const A = this.gradAccumSteps;
    const stride = StepHistory.recordFloats(A, this.lossScale !== null);
    const stats: StepStats[] = [];
    for (let k = this.#pending; k > 0; k--) {
      const at = ((this.#next - k + this.steps) % this.steps) * stride;
      let sum = 0;
      for (let i = 0; i < A; i++) sum += all[at + i];
      const step: StepStats = { loss: sum / A, gradNorm: all[at + A] };
      if (this.lossScale) {
        step.lossScale = { scale: all[at + A + 1], skippedSteps: all[at + A + 3] };
      }
      stats.push(step);
    }
    this.#pending = 0;
    return stats;
  }
}

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
}

/**
 * A ring of `steps` records, each a step's micro-step mean losses (`gradAccumSteps` floats)
 * then its grad norm; the newest `#pending` await {@link StepHistory.read}.
 */
export class StepHistory {
  #pending = 0;
  #next = 0;

  /** `ring` holds `steps * (gradAccumSteps + 1)` floats; its owner destroys it. */
  constructor(
    readonly gpu: Gpu,
    readonly ring: GPUBuffer,
    readonly steps: number,
    readonly gradAccumSteps: number,
  ) {}

  /**
   * Encode the copy of this step's record: `losses` (a float per micro-step) and the norm,
   * the first float of `normScale`.
   */
  record(encoder: GPUCommandEncoder, losses: GPUBuffer, normScale: GPUBuffer): void {
    const stride = (this.gradAccumSteps + 1) * 4;
    const at = this.#next * stride;
    encoder.copyBufferToBuffer(losses, 0, this.ring, at, stride - 4);
    encoder.copyBufferToBuffer(normScale, 0, this.ring, at + stride - 4, 4);
    this.#next = (this.#next + 1) % this.steps;
    this.#pending = Math.min(this.#pending + 1, this.steps);
  }

  /** The records since the last read (the newest `steps` of them), oldest first. Waits. */
  async read(): Promise<StepStats[]> {
    const all = await readF32(this.gpu, this.ring);
    this.gpu.throwIfFailed("model step");
    const stride = this.gradAccumSteps + 1;
    const stats: StepStats[] = [];
    for (let k = this.#pending; k > 0; k--) {
      const at = ((this.#next - k + this.steps) % this.steps) * stride;
      let sum = 0;
      for (let i = 0; i < this.gradAccumSteps; i++) sum += all[at + i];
      stats.push({ loss: sum / this.gradAccumSteps, gradNorm: all[at + this.gradAccumSteps] });
    }
    this.#pending = 0;
    return stats;
  }
}

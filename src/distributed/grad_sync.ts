/**
 * Gradient averaging over ranks in buckets, overlapped with the backward (PyTorch DDP's
 * buckets). On the last micro-step of an accumulation the model's segments (GPT2.gradSegments:
 * ln_f, the blocks last first, the embeddings) go to the GPU one bucket at a time; behind each
 * bucket's dispatches, the gradients it finished are copied to a mappable buffer, read into the
 * communicator's host buffer and all-reduced by the communicator's Worker while the GPU runs
 * the next bucket. Each averaged bucket is written back into the gradient buffer (queued before
 * the optimizer step).
 *
 * Waiting: Deno's mapAsync polls wgpu until *all* submitted work is done, inside the call, then
 * resolves after a 10 ms timer. So the next bucket is encoded beforehand and submitted as soon
 * as mapAsync returns: the GPU runs it during the timer, the host copy and the all-reduce.
 * The poll blocks without spinning (the main thread took no CPU time in 1-2 s waits).
 *
 * The all-reduce is element-wise, so buckets (packed one after another in the host buffer) sum
 * the same values as one whole-buffer all-reduce. With 2 ranks the bits are the same too; with
 * more, the shm and socket transports start each element's sum at the rank that owns its share
 * of the call, which moves with the bucket bounds: deterministic for a fixed bucket size, but
 * the last bits may differ from the whole-buffer order.
 */
import { writeBuffer } from "../gpu/buffer.ts";
import type { GPT2 } from "../model/gpt2.ts";
import {
  type FloatRange,
  type GradSegment,
  mergeRanges,
  rangeFloats,
} from "../model/grad_segments.ts";
import type { Communicator } from "./communicator.ts";

/** PyTorch DDP's default bucket size (`bucket_cap_mb=25`). */
export const DEFAULT_BUCKET_BYTES = 25 << 20;

/** Consecutive segments whose gradients are all-reduced together. */
export interface Bucket {
  /** Segments `[first, end)` of the model's gradSegments. */
  first: number;
  end: number;
  /** The gradient ranges the segments finish, merged. */
  ranges: FloatRange[];
  /** Floats in `ranges`, and where they start in the packed host buffer. */
  floats: number;
  hostOffset: number;
}

/**
 * Segments grouped in run order, each bucket closed once it holds at least `minBytes` of
 * gradients (the last one takes what is left), packed one after another.
 */
export function planBuckets(segments: readonly GradSegment[], minBytes: number): Bucket[] {
  const buckets: Bucket[] = [];
  let first = 0, hostOffset = 0;
  for (let k = 0; k < segments.length; k++) {
    const ranges = mergeRanges(segments.slice(first, k + 1).flatMap((s) => s.ranges));
    const floats = rangeFloats(ranges);
    if (floats * 4 >= minBytes || k === segments.length - 1) {
      buckets.push({ first, end: k + 1, ranges, floats, hostOffset });
      hostOffset += floats;
      first = k + 1;
    }
  }
  return buckets;
}

/** Options of {@link GradSync}. */
export interface GradSyncOptions {
  /** Least bytes of gradients per bucket (default {@link DEFAULT_BUCKET_BYTES}). */
  bucketBytes?: number;
}

/** Averages a model's gradients over the ranks of `comm`, bucket by bucket. */
export class GradSync implements Disposable {
  /** The buckets, in the order the GPU finishes them. */
  readonly buckets: Bucket[];
  /** Every bucket's gradients, packed; the communicator reduces it in place. */
  #host: Float32Array;
  /** Mappable copies of the finished buckets, used in turn (one is read while one fills). */
  #staging: GPUBuffer[];

  /** Makes the communicator's host buffer: every rank at the same point, as for any. */
  constructor(
    private model: GPT2,
    private comm: Communicator,
    { bucketBytes = DEFAULT_BUCKET_BYTES }: GradSyncOptions = {},
  ) {
    if (!(bucketBytes > 0)) {
      throw new RangeError(`GradSync: bucketBytes must be positive, got ${bucketBytes}`);
    }
    this.buckets = planBuckets(model.gradSegments, bucketBytes);
    const all = mergeRanges(this.buckets.flatMap((b) => b.ranges));
    const total = model.layout.totalFloats;
    if (all.length !== 1 || all[0][0] !== 0 || all[0][1] !== total) {
      throw new Error(
        `GradSync: the model's gradient segments cover [${all.join(") [")}), not [0,${total})`,
      );
    }
    this.#host = comm.hostBuffer(total);
    const size = 4 * Math.max(...this.buckets.map((b) => b.floats));
    this.#staging = this.buckets.slice(0, 2).map((_, i) =>
      model.gpu.device.createBuffer({
        size,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
        label: `gradient bucket readback ${i}`,
      })
    );
  }

  /**
   * The last micro-step of an accumulation, with the gradients averaged over the ranks: call
   * it instead of model.step() there, on the uploaded batch. Resolves once the averaged
   * gradients are queued for upload, so that the next optimizerStep uses them.
   */
  async lastMicroStep(): Promise<void> {
    const queue = this.model.gpu.device.queue;
    const reductions: Promise<void>[] = [];
    try {
      queue.submit([this.#encode(0)]);
      for (let i = 0; i < this.buckets.length; i++) {
        const bucket = this.buckets[i], staging = this.#staging[i % 2];
        const next = i + 1 < this.buckets.length ? this.#encode(i + 1) : null;
        const mapped = staging.mapAsync(GPUMapMode.READ, 0, bucket.floats * 4);
        if (next) queue.submit([next]); // mapAsync has waited for bucket i: keep the GPU busy
        await mapped;
        this.model.gpu.throwIfFailed(`training step, gradient bucket ${i}`);
        const host = this.#host.subarray(bucket.hostOffset, bucket.hostOffset + bucket.floats);
        host.set(new Float32Array(staging.getMappedRange(0, bucket.floats * 4)));
        staging.unmap();
        reductions.push(this.comm.allReduceMean(host).then(() => this.#writeBack(bucket, host)));
      }
      await Promise.all(reductions);
    } catch (e) {
      await Promise.allSettled(reductions);
      throw e;
    }
  }

  /** Bucket i's segments, then the copy of its finished gradients to its staging buffer. */
  #encode(i: number): GPUCommandBuffer {
    const bucket = this.buckets[i];
    const encoder = this.model.gpu.device.createCommandEncoder();
    for (let k = bucket.first; k < bucket.end; k++) this.model.encodeStepSegment(encoder, k);
    let at = 0;
    for (const [start, end] of bucket.ranges) {
      const bytes = (end - start) * 4;
      encoder.copyBufferToBuffer(this.model.grads, start * 4, this.#staging[i % 2], at, bytes);
      at += bytes;
    }
    return encoder.finish();
  }

  /** Queue the averaged `host` of `bucket` into its ranges of the gradient buffer. */
  #writeBack(bucket: Bucket, host: Float32Array): void {
    let at = 0;
    for (const [start, end] of bucket.ranges) {
      const part = host.subarray(at, at + end - start) as Float32Array<ArrayBuffer>;
      writeBuffer(this.model.gpu, this.model.grads, part, start * 4);
      at += end - start;
    }
  }

  /** Frees the staging buffers. */
  [Symbol.dispose](): void {
    for (const b of this.#staging) b.destroy();
    this.#staging = [];
  }
}

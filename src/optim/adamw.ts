/**
 * AdamW on the GPU over flat f32 buffers (params, grads, m, v of the same layout), with
 * PyTorch's torch.optim.AdamW semantics (bias correction, decoupled weight decay) and the
 * gradients scaled by the clip scale that grad_norm.ts leaves on the GPU.
 *
 * Weight decay is chosen per segment of the flat layout (GPT-2: decay on every 2-D tensor,
 * none on 1-D ones; the model lays them out as few contiguous segments). Buffers of any size
 * are bound in chunks of at most maxBinding bytes. lr and the step number change every step:
 * call `setStep(t, lr)` before submitting each step's dispatches.
 *
 * With a `copy` binding the step also writes the new parameters in the op's copy storage type
 * (a bf16 model's working copy of its f32 master weights); {@link AdamWOp.copy} refreshes that
 * copy after the master weights were uploaded.
 */
import type { Gpu } from "../gpu/device.ts";
import { asRange, type Binding, subRange } from "../gpu/buffer.ts";
import { flatWindows } from "../gpu/window.ts";
import { type Dispatch, grid, Kernel } from "../gpu/kernel.ts";
import { elementBytes, specializeStorage, type StorageType } from "../gpu/storage.ts";
import source from "../../kernels/adamw.wgsl" with { type: "text" };

/** Hyperparameters fixed for a run (the seed recipe: 0.9, 0.95, 1e-8, 0.125). */
export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** A range [start, end) of the flat layout, in elements, with or without weight decay. */
export interface AdamWSegment {
  start: number;
  end: number;
  decay: boolean;
}

/** One optimizer step over the bound buffers. */
export interface AdamWStep {
  /** Replay these after the grad-norm dispatches, every step. */
  readonly dispatches: Dispatch[];
  /** Set the 1-based step number t and the learning rate for the next submission. */
  setStep(t: number, lr: number): void;
}

/** The AdamW op. */
export interface AdamWOp {
  /**
   * params (n) -=, m (n) and v (n) updated in place, from grads (n) * normScale[1]
   * (`normScale` is grad_norm's result buffer: [norm, clip scale]). Elements outside every
   * segment are left alone. All four flat bindings must start on `gpu.offsetAlignment`.
   */
  bind(
    b: {
      params: Binding;
      grads: Binding;
      m: Binding;
      v: Binding;
      normScale: Binding;
      copy?: Binding;
    },
    segments: readonly AdamWSegment[],
    config: AdamWConfig,
  ): AdamWStep;
  /** copy (n) = params (n) in the copy storage type, elements [0, n). */
  copy(b: { params: Binding; copy: Binding }, n: number): Dispatch[];
}

/** Options for {@link createAdamW}. */
export interface AdamWOptions {
  /** Largest byte size of one binding (default `gpu.maxBinding`; tests make it small). */
  maxBinding?: number;
  /** Storage of the parameter copy (default bf16), when bound. */
  copyType?: StorageType;
}

/** Compile the AdamW kernels. */
export async function createAdamW(gpu: Gpu, options: AdamWOptions = {}): Promise<AdamWOp> {
  const copyType = options.copyType ?? "bf16";
  const code = specializeStorage(source, { copy: copyType, copy_dst: copyType });
  const [kernel, kernelCopy, copyKernel] = await Promise.all(
    ["adamw_step", "adamw_step_copy", "copy_params"].map((entryPoint) =>
      Kernel.create(gpu, { label: entryPoint, code, entryPoint })
    ),
  );
  const maxBinding = options.maxBinding ?? gpu.maxBinding;
  // Windows start on twice the alignment in f32 elements, so that the copy's (2-byte elements
  // when bf16) starts on the alignment too.
  const copyBytes = elementBytes(copyType);
  const windows = (start: number, end: number) =>
    flatWindows(start, end, maxBinding, gpu.offsetAlignment * 4 / copyBytes);
  return {
    copy(b, n) {
      return windows(0, n).map((c) =>
        copyKernel.bind(
          grid(Math.ceil((c.hi - c.lo) / 64)),
          [
            subRange(b.copy, c.base * copyBytes, Math.ceil(c.count * copyBytes / 4) * 4),
            subRange(b.params, c.base * 4, c.count * 4),
          ],
          stepParams({ beta1: 0, beta2: 0, eps: 0, weightDecay: 0 }, false, c.lo, c.hi, 1, 0),
        )
      );
    },
    bind(b, segments, config) {
      checkSegments(segments, b);
      const parts: { dispatch: Dispatch; lo: number; hi: number; decay: boolean }[] = [];
      for (const segment of segments) {
        for (const c of windows(segment.start, segment.end)) {
          const range = (x: Binding) => subRange(x, c.base * 4, c.count * 4);
          const flat = [range(b.params), range(b.grads), range(b.m), range(b.v), b.normScale];
          const copy = b.copy &&
            subRange(b.copy, c.base * copyBytes, Math.ceil(c.count * copyBytes / 4) * 4);
          const dispatch = (copy ? kernelCopy : kernel).bind(
            grid(Math.ceil((c.hi - c.lo) / 64)),
            copy ? [...flat, copy] : flat,
            stepParams(config, segment.decay, c.lo, c.hi, 1, 0),
          );
          parts.push({ dispatch, lo: c.lo, hi: c.hi, decay: segment.decay });
        }
      }
      return {
        dispatches: parts.map((p) => p.dispatch),
        setStep(t, lr) {
          if (!(Number.isInteger(t) && t >= 1)) {
            throw new RangeError(`adamw: step must be an integer >= 1, got ${t}`);
          }
          if (!Number.isFinite(lr)) throw new RangeError(`adamw: lr must be finite, got ${lr}`);
          for (const p of parts) {
            p.dispatch.setParams(stepParams(config, p.decay, p.lo, p.hi, t, lr));
          }
        },
      };
    },
  };
}

/** The kernel's uniform: step-dependent scalars computed in f64 (rounded to f32 on write). */
function stepParams(
  config: AdamWConfig,
  decay: boolean,
  lo: number,
  hi: number,
  t: number,
  lr: number,
): Uint8Array<ArrayBuffer> {
  const buffer = new ArrayBuffer(36);
  new Uint32Array(buffer, 0, 2).set([lo, hi]);
  new Float32Array(buffer, 8, 7).set([
    config.beta2,
    1 - config.beta1,
    1 - config.beta2,
    config.eps,
    1 - lr * (decay ? config.weightDecay : 0),
    lr / (1 - config.beta1 ** t),
    Math.sqrt(1 - config.beta2 ** t),
  ]);
  return new Uint8Array(buffer);
}

function checkSegments(
  segments: readonly AdamWSegment[],
  b: { params: Binding; grads: Binding; m: Binding; v: Binding; copy?: Binding },
) {
  const n = Math.min(...[b.params, b.grads, b.m, b.v].map((x) => asRange(x).size)) / 4;
  const sorted = [...segments].sort((x, y) => x.start - y.start);
  sorted.forEach((s, i) => {
    if (
      !(Number.isInteger(s.start) && Number.isInteger(s.end) && 0 <= s.start && s.start < s.end)
    ) {
      throw new RangeError(`adamw: bad segment [${s.start}, ${s.end})`);
    }
    if (s.end > n) {
      throw new RangeError(`adamw: segment [${s.start}, ${s.end}) is past the ${n}-float buffers`);
    }
    if (i > 0 && s.start < sorted[i - 1].end) {
      throw new RangeError(
        `adamw: segments [${sorted[i - 1].start}, ${
          sorted[i - 1].end
        }) and [${s.start}, ${s.end}) overlap`,
      );
    }
  });
}

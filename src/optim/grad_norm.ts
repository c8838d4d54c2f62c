/**
 * Global gradient norm and clip scale on the GPU, deterministic (fixed-order reductions, no
 * atomics): run once per optimizer step after the gradients are complete (all-reduced), before
 * AdamW, which reads the clip scale from the same small buffer. No CPU readback is needed; the
 * trainer reads `result` back only when it logs the norm.
 *
 * `result` layout (f32): [0] = L2 norm of grads[0, n), [1] = clip scale min(1, clip / (norm +
 * 1e-6)), or 1 when clip <= 0 (no clipping).
 *
 * Dynamic loss scaling (an f16 model's, decided on the GPU): with a `lossScale` binding, the
 * gradients are those of the loss times its scale S; the norm and clip scale are unscaled, a
 * non-finite norm (an overflow) sets result[2] = 1 (AdamW skips the step) and halves S, and a
 * run of `growthInterval` good steps doubles it (see kernels/grad_norm.wgsl).
 */
import type { Gpu } from "../gpu/device.ts";
import { type Binding, createBuffer, subRange, uploadBuffer } from "../gpu/buffer.ts";
import { flatWindows } from "../gpu/window.ts";
import { type Dispatch, grid, Kernel } from "../gpu/kernel.ts";
import { useSubgroups, withWorkgroupReductions } from "../gpu/workgroup_reduce.ts";
import source from "../../kernels/grad_norm.wgsl" with { type: "text" };

/** Elements per partial sum; must match WG * ITEMS in kernels/grad_norm.wgsl. */
const PER_WORKGROUP = 256 * 16;

/** Prepared gradient-norm dispatches. */
export interface GradNormOp {
  /**
   * result (2 f32: norm, clip scale; 3 with `lossScale`: and the skip flag) <- grads (n f32, a
   * flat buffer of any size: bound in chunks of at most maxBinding bytes). `grads` must start
   * on `gpu.offsetAlignment`. `lossScale` (3 f32: scale, good steps in a row, skipped steps)
   * turns dynamic loss scaling on, growing the scale after `growthInterval` good steps.
   */
  bind(
    b: { grads: Binding; result: Binding; lossScale?: Binding },
    s: { n: number; clip: number; growthInterval?: number },
  ): Dispatch[];
  /** Free the partial-sum scratch buffers made by `bind`. */
  destroy(): void;
}

/** Options for {@link createGradNorm}. */
export interface GradNormOptions {
  /** Largest byte size of one binding (default `gpu.maxBinding`; tests make it small). */
  maxBinding?: number;
  /**
   * Reduce with subgroup shuffles (default: when the device has `subgroups`); either way gives
   * the same bits.
   */
  subgroups?: boolean;
}

/** Compile the gradient-norm kernels. */
export async function createGradNorm(
  gpu: Gpu,
  options: GradNormOptions = {},
): Promise<GradNormOp> {
  const code = withWorkgroupReductions(
    source,
    [{ name: "workgroup_sum", type: "f32", op: "sum" }],
    useSubgroups(gpu, options.subgroups, "grad norm"),
  );
  const [partialsKernel, finalize] = await Promise.all(
    ["grad_norm_partials", "grad_norm_finalize"].map((entryPoint) =>
      Kernel.create(gpu, { label: entryPoint, code, entryPoint })
    ),
  );
  const maxBinding = options.maxBinding ?? gpu.maxBinding;
  const scratch: GPUBuffer[] = [];
  return {
    bind(b, { n, clip, growthInterval = 2000 }) {
      if (!Number.isFinite(clip)) {
        throw new RangeError(`grad norm: clip must be finite, got ${clip}`);
      }
      const chunks = flatWindows(0, n, maxBinding, gpu.offsetAlignment);
      const total = chunks.reduce((sum, c) => sum + Math.ceil((c.hi - c.lo) / PER_WORKGROUP), 0);
      const partials = createBuffer(gpu, Math.max(1, total) * 4, "grad norm partials");
      scratch.push(partials);
      const dispatches: Dispatch[] = [];
      let first = 0;
      for (const c of chunks) {
        const count = Math.ceil((c.hi - c.lo) / PER_WORKGROUP);
        dispatches.push(partialsKernel.bind(
          grid(count),
          [subRange(b.grads, c.base * 4, c.count * 4), partials],
          new Uint32Array([c.lo, c.hi, first]),
        ));
        first += count;
      }
      if (!(Number.isInteger(growthInterval) && growthInterval >= 1)) {
        throw new RangeError(`grad norm: growthInterval must be >= 1, got ${growthInterval}`);
      }
      // Bound in place of `lossScale` when there is none; the kernel reads nothing from it then.
      const lossScale = b.lossScale ?? uploadBuffer(gpu, new Float32Array(4), "no loss scale");
      if (!b.lossScale) scratch.push(lossScale as GPUBuffer);
      const finalParams = new ArrayBuffer(16);
      new Uint32Array(finalParams).set([total, 0, b.lossScale ? 1 : 0, growthInterval]);
      new Float32Array(finalParams, 4, 1)[0] = clip;
      dispatches.push(
        finalize.bind(
          [1],
          [partials, b.result, lossScale],
          new Uint8Array(finalParams),
        ),
      );
      return dispatches;
    },
    destroy() {
      for (const buffer of scratch.splice(0)) buffer.destroy();
    },
  };
}

/**
 * GPT-2's classifier, fused like llm.c's: tied lm_head (logits = x @ wte^T), softmax,
 * cross-entropy and, in the same pass, dlogits, dx and dwte, over chunks of rows so the logits
 * never exceed one binding (logits for 16 x 1024 tokens would be 3.3 GB).
 *
 * Per chunk of R rows, with a scratch (R, Vp) buffer reused by every chunk:
 *   scratch (R, Vp)    = x[r0:r0+R] (R, C) @ wte (Vp, C)^T
 *   losses[r0:r0+R]    = cross-entropy over the first V columns; scratch <- dlogits, 0 in the
 *                        padded columns                        (kernels/classifier.wgsl)
 *   dx[r0:r0+R] (R, C) = dlogits @ wte                          (=, or += with accumulateDx)
 *   dwte (Vp, C)      += dlogits^T @ x[r0:r0+R]                 (padded rows get += 0)
 * The products run over all Vp columns (multiples of 4 take the 16-byte-load kernels); the
 * padded ones cost 0.1% at GPT-2's 50,304 and never reach the loss or the gradients, as long
 * as wte's padded rows are finite.
 */
import type { Gpu } from "../gpu/device.ts";
import { asRange, type Binding, uploadBuffer } from "../gpu/buffer.ts";
import { bindWindow } from "../gpu/window.ts";
import { type Dispatch, grid, Kernel } from "../gpu/kernel.ts";
import { useSubgroups, withWorkgroupReductions } from "../gpu/workgroup_reduce.ts";
import { createMatmul, type MatmulOp, type MatmulOptions } from "./matmul.ts";
import source from "../../kernels/classifier.wgsl" with { type: "text" };

/** Sizes: N rows (B*T), C channels, V real vocabulary, Vp padded vocabulary (wte rows). */
export interface ClassifierShape {
  N: number;
  C: number;
  V: number;
  Vp: number;
}

/** Bindings of {@link ClassifierOp.forward}. */
export interface ClassifierForwardBindings {
  /** (N): per-row loss, overwritten. */
  losses: Binding;
  /** (N, C): final hidden states (after ln_f). */
  x: Binding;
  /** (Vp, C): token embeddings, tied lm_head. */
  wte: Binding;
  /** (N) u32: next tokens, each < V. */
  targets: Binding;
  /** (R, Vp) work space, R >= 1 rows; see {@link classifierScratchBytes}. Its contents are
   * overwritten. */
  scratch: Binding;
}

/** Bindings of {@link ClassifierOp.forwardBackward}. */
export interface ClassifierBackwardBindings extends ClassifierForwardBindings {
  /** (N, C): = d(loss)/dx (+= with `accumulateDx`). */
  dx: Binding;
  /** (Vp, C): += d(loss)/dwte (rows >= V get += 0). */
  dwte: Binding;
  /**
   * f32 whose first element multiplies dlogits (an f16 model's dynamic loss scale, see
   * grad_norm.ts); default 1.
   */
  lossScale?: Binding;
}

/** Prepared dispatches of the classifier; see {@link createClassifier}. */
export interface ClassifierOp {
  /** The products' op (its tiles, storage type and whether f16 products run in f16). */
  readonly matmul: MatmulOp;
  /** Training: losses, and dx, dwte with dlogits = (softmax - onehot) * dloss. */
  forwardBackward(
    b: ClassifierBackwardBindings,
    s: ClassifierShape & { dloss: number; accumulateDx?: boolean },
  ): Dispatch[];
  /** Evaluation: losses only. */
  forward(b: ClassifierForwardBindings, s: ClassifierShape): Dispatch[];
  /** Sampling: logits (rows, Vp) = x[row0 : row0 + rows] @ wte^T, columns < V written. */
  logits(
    b: { logits: Binding; x: Binding; wte: Binding },
    s: { row0: number; rows: number; C: number; V: number; Vp: number },
  ): Dispatch[];
  /** out[0] = mean of losses (N), reduced in a fixed order. */
  meanLoss(b: { out: Binding; losses: Binding }, s: { N: number }): Dispatch;
  /** Frees the op's own buffers. */
  destroy(): void;
}

/**
 * Bytes a device gives the classifier's logits scratch (the chunk budget). The scratch is one
 * storage binding, so at most the device's maxStorageBufferBindingSize and maxBufferSize; on a
 * GPU at most 4 GiB besides: GPT-2's B=16, T=1024 logits (16,384 x 50,304 f32, 3.3 GB) then
 * run as one chunk, so the lm_head dx product gets a grid of 16,384-row tiles instead of 13
 * sequential 1,280-row ones, while a larger batch costs no more memory than that (WebGPU does
 * not tell the memory size; 4 GiB is a fraction of any card that trains the 124M model at B=16,
 * whose activations alone take ~10 GB). Software adapters keep 256 MiB (their 128 MiB binding
 * limit is lower anyway).
 */
export function classifierScratchBudget(gpu: Gpu): number {
  const { maxStorageBufferBindingSize, maxBufferSize } = gpu.device.limits;
  const cap = gpu.isFallback ? 256 * 2 ** 20 : 4 * 2 ** 30;
  return Math.min(maxStorageBufferBindingSize, maxBufferSize, cap);
}

/**
 * Bytes of the (R, Vp) scratch: as many rows as fit one binding and `budgetBytes` (default
 * {@link classifierScratchBudget}), at most N, at least one.
 */
export function classifierScratchBytes(
  gpu: Gpu,
  N: number,
  Vp: number,
  budgetBytes = classifierScratchBudget(gpu),
): number {
  const rows = Math.max(
    1,
    Math.min(N, Math.floor(Math.min(gpu.maxBinding, budgetBytes) / (Vp * 4))),
  );
  return rows * Vp * 4;
}

/** Options for {@link createClassifier}: the products' and the softmax's. */
export interface ClassifierOptions extends MatmulOptions {
  /**
   * Reduce softmax rows with subgroup shuffles (default: when the device has `subgroups`);
   * either way gives the same bits.
   */
  subgroups?: boolean;
}

/** Compiles the classifier's kernels (the matmuls are shared with {@link createMatmul}). */
export async function createClassifier(
  gpu: Gpu,
  options: ClassifierOptions = {},
): Promise<ClassifierOp> {
  const { subgroups, ...matmulOptions } = options;
  const matmul: MatmulOp = await createMatmul(gpu, matmulOptions);
  const type = matmul.type;
  const maxBinding = Math.min(options.maxBinding ?? gpu.maxBinding, gpu.maxBinding);
  const align = gpu.offsetAlignment;
  const one = uploadBuffer(gpu, new Float32Array([1, 0, 0, 0]), "classifier loss scale 1");
  const code = withWorkgroupReductions(source, [
    { name: "workgroup_max", type: "f32", op: "max" },
    { name: "workgroup_sum", type: "f32", op: "sum" },
  ], useSubgroups(gpu, subgroups, "classifier"));
  const [xent, mean] = await Promise.all([
    Kernel.create(gpu, { label: "classifier softmax_xent", code, entryPoint: "softmax_xent" }),
    Kernel.create(gpu, { label: "classifier mean_loss", code, entryPoint: "mean_loss" }),
  ]);

  function chunks(
    b: ClassifierForwardBindings & Partial<ClassifierBackwardBindings>,
    s: ClassifierShape & { dloss?: number; accumulateDx?: boolean },
    backward: boolean,
  ): Dispatch[] {
    const { N, C, V, Vp } = s;
    if (!(V >= 1 && V <= Vp)) throw new RangeError(`classifier: V=${V} must be in [1, Vp=${Vp}]`);
    let R = Math.min(N, Math.floor(Math.min(asRange(b.scratch).size, maxBinding) / (Vp * 4)));
    // Whole tiles of rows where possible, multiples of 4 for the matmuls' 16-byte loads.
    for (const step of [64, 4]) if (R > step && R < N) R -= R % step;
    if (R < 1) {
      throw new RangeError(
        `classifier: scratch of ${asRange(b.scratch).size} bytes holds no row of Vp=${Vp} logits`,
      );
    }
    const out: Dispatch[] = [];
    for (let r0 = 0; r0 < N; r0 += R) {
      const rows = Math.min(R, N - r0);
      out.push(...matmul.gemm({
        label: "classifier logits",
        c: b.scratch,
        a: b.x,
        b: b.wte,
        M: rows,
        N: Vp,
        K: C,
        aLayout: "mk",
        bLayout: "nk",
        aOffset: r0 * C,
        types: { a: type, b: type, c: "f32" },
      }));
      const logits = bindWindow("classifier: scratch", b.scratch, 0, rows * Vp, align);
      const losses = bindWindow("classifier: losses", b.losses, r0, rows, align);
      const targets = bindWindow("classifier: targets", b.targets, r0, rows, align);
      const params = new ArrayBuffer(32);
      new Uint32Array(params, 0, 7).set([
        V,
        Vp,
        rows,
        logits.offset,
        targets.offset,
        losses.offset,
        backward ? 1 : 0,
      ]);
      new Float32Array(params, 28, 1)[0] = s.dloss ?? 0;
      out.push(
        xent.bind(
          grid(rows),
          [logits.range, losses.range, targets.range, b.lossScale ?? one],
          new Uint8Array(params),
        ),
      );
      if (!backward) continue;
      out.push(...matmul.gemm({
        label: "classifier dx",
        c: b.dx!,
        a: b.scratch,
        b: b.wte,
        M: rows,
        N: C,
        K: Vp,
        aLayout: "mk",
        bLayout: "kn",
        cOffset: r0 * C,
        accumulate: s.accumulateDx ?? false,
        types: { a: "f32", b: type, c: type },
      }));
      out.push(...matmul.gemm({
        label: "classifier dwte",
        c: b.dwte!,
        a: b.scratch,
        b: b.x,
        M: Vp,
        N: C,
        K: rows,
        aLayout: "km",
        bLayout: "kn",
        bOffset: r0 * C,
        accumulate: true,
        types: { a: "f32", b: type, c: "f32" },
      }));
    }
    return out;
  }

  return {
    matmul,
    forwardBackward: (b, s) => chunks(b, s, true),
    forward: (b, s) => chunks(b, s, false),
    logits(b, s) {
      return matmul.gemm({
        label: "classifier logits (sampling)",
        c: b.logits,
        a: b.x,
        b: b.wte,
        M: s.rows,
        N: s.V,
        K: s.C,
        aLayout: "mk",
        bLayout: "nk",
        ldc: s.Vp,
        aOffset: s.row0 * s.C,
        types: { a: type, b: type, c: "f32" },
      });
    },
    meanLoss(b, s) {
      const losses = bindWindow("classifier mean: losses", b.losses, 0, s.N, align);
      const out = bindWindow("classifier mean: out", b.out, 0, 1, align);
      return mean.bind(
        [1],
        [out.range, losses.range],
        new Uint32Array([s.N, losses.offset, out.offset]),
      );
    },
    destroy() {
      matmul.destroy();
      one.destroy();
    },
  };
}

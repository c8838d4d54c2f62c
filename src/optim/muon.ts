/**
 * Muon on the GPU (Keller Jordan's optimizer, as torch.optim.Muon): for each 2-D weight,
 * Nesterov momentum, then 5 Newton-Schulz iterations that push the update's singular values
 * towards 1 (an approximate orthogonalization), then a step scaled by the matrix shape:
 *
 *   g = grad * clip_scale;  buf = lerp(buf, g, 1 - mu);  X = lerp(g, buf, mu)
 *   X = X / max(||X||_F, 1e-7)                    (on X^T when rows > cols, so rows <= cols)
 *   5 times: A = X X^T;  B = b A + c A A;  X = a X + B X   with (a, b, c) = NS_COEFFICIENTS
 *   p = p * (1 - lr * wd) - lr * max(1, rows / cols)^0.5 * X
 *
 * The products run on the model's matmul op (passed in: optim sits below model) and the norm on
 * grad_norm's fixed-order reduction, so a step is deterministic. X^T is never materialized:
 * for a tall matrix A = X^T X and B X^T is written back as X B^T, by the products' layouts.
 * One set of scratch buffers, sized for the largest tensor, serves every tensor in turn.
 */
import type { Gpu } from "../gpu/device.ts";
import { asRange, type Binding, createBuffer, subRange } from "../gpu/buffer.ts";
import { type Dispatch, grid, Kernel } from "../gpu/kernel.ts";
import type { GradNormOp } from "./grad_norm.ts";
import code from "../../kernels/muon.wgsl" with { type: "text" };

/** The quintic Newton-Schulz coefficients (a, b, c) of Muon's published implementation. */
export const NS_COEFFICIENTS = [3.4445, -4.7750, 2.0315] as const;
/** Newton-Schulz iterations per step. */
export const NS_STEPS = 5;
/** Momentum coefficient of the published recipe. */
export const MUON_MOMENTUM = 0.95;
/** Floor of the Frobenius norm the update is divided by. */
export const NS_EPS = 1e-7;

/** Hyperparameters fixed for a run. */
export interface MuonConfig {
  /** Momentum coefficient mu (0.95). */
  momentum: number;
  /** Decoupled weight decay, applied as p * (1 - lr * weightDecay). */
  weightDecay: number;
}

/** One 2-D tensor of the flat buffers, (rows, cols) row-major. */
export interface MuonTensor {
  /** Names the tensor in errors. */
  name: string;
  /** Offset in floats into the flat buffers. */
  offset: number;
  rows: number;
  cols: number;
}

/**
 * The general product Muon runs on; src/model/matmul.ts's MatmulOp is one. Layouts as there:
 * a stored (M, K) "mk" or (K, M) "km", b stored (K, N) "kn" or (N, K) "nk", c (M, N) = a @ b.
 */
export interface Gemm {
  gemm(d: {
    c: Binding;
    a: Binding;
    b: Binding;
    M: number;
    N: number;
    K: number;
    aLayout: "mk" | "km";
    bLayout: "kn" | "nk";
    label?: string;
  }): Dispatch[];
}

/** One optimizer step over the bound tensors. */
export interface MuonStep {
  /** Replay these after the grad-norm dispatches, every step (some appear more than once). */
  readonly dispatches: Dispatch[];
  /** Set the learning rate for the next submission. */
  setLr(lr: number): void;
}

/** The Muon op. */
export interface MuonOp {
  /**
   * params -=, momentum updated in place, from grads * normScale[1] (grad_norm's result), for
   * each of `tensors` (of the flat buffers `params`, `grads`, `momentum`); other elements are
   * left alone. Every tensor offset must be a multiple of `gpu.offsetAlignment` / 4.
   */
  bind(
    b: { params: Binding; grads: Binding; momentum: Binding; normScale: Binding },
    tensors: readonly MuonTensor[],
    config: MuonConfig,
  ): MuonStep;
  /** Free the scratch buffers made by `bind`. */
  destroy(): void;
}

/** Compile Muon's elementwise kernels; products and norms run on `gemm` and `gradNorm`. */
export async function createMuon(
  gpu: Gpu,
  { gemm, gradNorm }: { gemm: Gemm; gradNorm: GradNormOp },
): Promise<MuonOp> {
  const [momentumK, normalizeK, combineK, updateK] = await Promise.all(
    ["muon_momentum", "muon_normalize", "muon_combine", "muon_update"].map((entryPoint) =>
      Kernel.create(gpu, { label: entryPoint, code, entryPoint })
    ),
  );
  const scratch: GPUBuffer[] = [];
  const alloc = (floats: number, label: string) => {
    const buffer = createBuffer(gpu, Math.max(1, floats) * 4, label);
    scratch.push(buffer);
    return buffer;
  };
  const uniform = (n: number, s0: number, s1: number) => {
    const buffer = new ArrayBuffer(12);
    new Uint32Array(buffer, 0, 1)[0] = n;
    new Float32Array(buffer, 4, 2).set([s0, s1]);
    return new Uint8Array(buffer);
  };
  const elementwise = (kernel: Kernel, n: number, buffers: Binding[], s0: number, s1: number) =>
    kernel.bind(grid(Math.ceil(n / 64)), buffers, uniform(n, s0, s1));
  const product = (
    label: string,
    c: Binding,
    a: Binding,
    b: Binding,
    [M, N, K]: [number, number, number],
    aLayout: "mk" | "km",
    bLayout: "kn" | "nk",
  ) => gemm.gemm({ label, c, a, b, M, N, K, aLayout, bLayout });

  return {
    bind(b, tensors, config) {
      checkTensors(gpu, b, tensors);
      const most = (f: (t: MuonTensor) => number) => Math.max(0, ...tensors.map(f));
      const x = alloc(most((t) => t.rows * t.cols), "muon X");
      const y = alloc(most((t) => t.rows * t.cols), "muon B X");
      const gram = alloc(most((t) => Math.min(t.rows, t.cols) ** 2), "muon A");
      const poly = alloc(most((t) => Math.min(t.rows, t.cols) ** 2), "muon b A + c A A");
      const norm = alloc(2, "muon norm");
      const [a, bCoef, c] = NS_COEFFICIENTS;
      const dispatches: Dispatch[] = [];
      const updates: { dispatch: Dispatch; n: number; shapeScale: number }[] = [];
      for (const t of tensors) {
        const n = t.rows * t.cols;
        const s = Math.min(t.rows, t.cols);
        const wide = t.rows <= t.cols;
        const view = (flat: Binding) => subRange(flat, t.offset * 4, n * 4);
        const label = `muon ${t.name}`;
        dispatches.push(
          elementwise(
            momentumK,
            n,
            [view(b.momentum), x, view(b.grads), b.normScale],
            config.momentum,
            1 - config.momentum,
          ),
          ...gradNorm.bind({ grads: x, result: norm }, { n, clip: 0 }),
          elementwise(normalizeK, n, [x, norm], NS_EPS, 0),
        );
        // The products, with X^T read through the layouts: for a tall X, A = X^T X and the
        // transpose of B X^T is X B^T.
        const xxt = wide
          ? product(`${label} X X^T`, gram, x, x, [s, s, t.cols], "mk", "nk")
          : product(`${label} X^T X`, gram, x, x, [s, s, t.rows], "km", "kn");
        const square = product(`${label} A A`, poly, gram, gram, [s, s, s], "mk", "kn");
        const bx = wide
          ? product(`${label} B X`, y, poly, x, [s, t.cols, s], "mk", "kn")
          : product(`${label} X B^T`, y, x, poly, [t.rows, s, s], "mk", "nk");
        const polynomial = elementwise(combineK, s * s, [poly, gram], bCoef, c); // b A + c A A
        const next = elementwise(combineK, n, [x, y], 1, a); // X = a X + B X
        // Each iteration replays the same prepared dispatches (a repeated entry is one object).
        for (let k = 0; k < NS_STEPS; k++) {
          dispatches.push(...xxt, ...square, polynomial, ...bx, next);
        }
        const update = elementwise(updateK, n, [view(b.params), x], 1, 0);
        dispatches.push(update);
        updates.push({ dispatch: update, n, shapeScale: Math.sqrt(Math.max(1, t.rows / t.cols)) });
      }
      return {
        dispatches,
        setLr(lr) {
          if (!Number.isFinite(lr)) throw new RangeError(`muon: lr must be finite, got ${lr}`);
          for (const u of updates) {
            u.dispatch.setParams(uniform(u.n, 1 - lr * config.weightDecay, lr * u.shapeScale));
          }
        },
      };
    },
    destroy() {
      for (const buffer of scratch.splice(0)) buffer.destroy();
    },
  };
}

function checkTensors(
  gpu: Gpu,
  b: { params: Binding; grads: Binding; momentum: Binding },
  tensors: readonly MuonTensor[],
) {
  const floats = Math.min(...[b.params, b.grads, b.momentum].map((x) => asRange(x).size)) / 4;
  for (const t of tensors) {
    const where = `muon: tensor ${t.name} (${t.rows}, ${t.cols}) at ${t.offset}`;
    if (![t.rows, t.cols, t.offset].every(Number.isInteger) || t.rows < 1 || t.cols < 1) {
      throw new RangeError(`${where}: not a 2-D tensor`);
    }
    if (t.offset + t.rows * t.cols > floats) {
      throw new RangeError(`${where}: past the ${floats}-float buffers`);
    }
    if ((t.offset * 4) % gpu.offsetAlignment !== 0) {
      throw new RangeError(`${where}: offset not a multiple of ${gpu.offsetAlignment / 4} floats`);
    }
    if (t.rows * t.cols * 4 > gpu.maxBinding) {
      throw new RangeError(`${where}: over this device's ${gpu.maxBinding}-byte binding limit`);
    }
  }
}

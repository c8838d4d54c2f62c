/**
 * LayerNorm dispatch (eps 1e-5), forward and backward, with optional bias (the seed model is
 * bias-free: pass `bias: null` / `dbias: null`).
 *
 * Backward is three dispatches: dinp per row, then the parameter gradients summed over rows in
 * a fixed order (per-32-row-block partials into a scratch buffer, then one thread per channel
 * adding the blocks in order). The scratch buffers belong to the op: `destroy()` frees them.
 */
import type { Gpu } from "../gpu/device.ts";
import { type Binding, createBuffer } from "../gpu/buffer.ts";
import { type Dispatch, grid, Kernel } from "../gpu/kernel.ts";
import { specializeStorage, type StorageType } from "../gpu/storage.ts";
import { useSubgroups, withWorkgroupReductions } from "../gpu/workgroup_reduce.ts";
import source from "../../kernels/layernorm.wgsl" with { type: "text" };

/** Rows per partial-sum block; must match ROWS in kernels/layernorm.wgsl. */
const ROWS = 32;

/** Shapes: N rows (B*T) of C channels. */
export interface LayerNormShape {
  N: number;
  C: number;
}

/** Prepared LayerNorm dispatches. */
export interface LayerNormOp {
  /** out (N,C), mean (N), rstd (N) <- inp (N,C), weight (C), bias (C) | null. All overwritten. */
  forward(
    b: {
      out: Binding;
      mean: Binding;
      rstd: Binding;
      inp: Binding;
      weight: Binding;
      bias: Binding | null;
    },
    s: LayerNormShape,
  ): Dispatch[];
  /**
   * dinp (N,C) +=, dweight (C) +=, dbias (C) += (when not null) <- dout (N,C), inp (N,C),
   * weight (C), mean (N), rstd (N) saved by forward. dinp ACCUMULATES (llm.c: it is the residual
   * stream's gradient); it must not alias dout.
   */
  backward(
    b: {
      dinp: Binding;
      dweight: Binding;
      dbias: Binding | null;
      dout: Binding;
      inp: Binding;
      weight: Binding;
      mean: Binding;
      rstd: Binding;
    },
    s: LayerNormShape,
  ): Dispatch[];
  /** Free the scratch buffers made by `backward`. */
  destroy(): void;
}

const ENTRY_POINTS = [
  "layernorm_forward",
  "layernorm_forward_nobias",
  "layernorm_backward",
  "layernorm_param_partials",
  "layernorm_param_reduce",
  "layernorm_param_reduce_nobias",
] as const;

/** Options for {@link createLayerNorm}. */
export interface LayerNormOptions {
  /**
   * Threads per row (a power of two, at most 256). Default 128 on GPUs and 32 on software
   * adapters, where workgroup barriers are costly (2.5x faster there at N=1024, C=768).
   */
  rowThreads?: number;
  /**
   * Storage of the rows (inp, out, dout, dinp) and of weight and bias (default f32); mean,
   * rstd and the parameter gradients are f32 either way.
   */
  type?: StorageType;
  /** Storage of inp when it differs from `type` (an f16 model's f32 residual stream). */
  inputType?: StorageType;
  /**
   * Reduce rows with subgroup shuffles (default: when the device has `subgroups`). Either way
   * gives the same bits; false keeps the workgroup-memory path (tests compare the two).
   */
  subgroups?: boolean;
}

/** Compile the LayerNorm kernels. */
export async function createLayerNorm(
  gpu: Gpu,
  options: LayerNormOptions = {},
): Promise<LayerNormOp> {
  const WG = options.rowThreads ?? (gpu.isFallback ? 32 : 128);
  if (!(Number.isInteger(Math.log2(WG)) && WG >= 1 && WG <= 256)) {
    throw new RangeError(`layernorm: rowThreads must be a power of two up to 256, got ${WG}`);
  }
  const type = options.type ?? "f32";
  const inputType = options.inputType ?? type;
  const subgroups = useSubgroups(gpu, options.subgroups, "layernorm");
  const reductions = [
    { name: "workgroup_sum", type: "f32", op: "sum" },
    { name: "workgroup_sum2", type: "vec2f", op: "sum" },
  ] as const;
  const code = specializeStorage(withWorkgroupReductions(source, reductions, subgroups), {
    ...Object.fromEntries(
      ["out", "fwd_weight", "fwd_bias", "dinp", "dout", "weight"].map((name) => [name, type]),
    ),
    fwd_inp: inputType,
    inp: inputType,
  });
  const [fwd, fwdNoBias, bwd, partials, reduce, reduceNoBias] = await Promise.all(
    ENTRY_POINTS.map((entryPoint) =>
      Kernel.create(gpu, { label: entryPoint, code, entryPoint, constants: { WG } })
    ),
  );
  const scratch: GPUBuffer[] = [];
  const params = (s: LayerNormShape, R = 0) => {
    if (!(s.N > 0 && s.C > 0 && Number.isInteger(s.N) && Number.isInteger(s.C))) {
      throw new RangeError(`layernorm: N and C must be positive integers, got N=${s.N} C=${s.C}`);
    }
    return new Uint32Array([s.N, s.C, R]);
  };
  return {
    forward(b, s) {
      const rows = grid(s.N);
      const io = [b.out, b.mean, b.rstd, b.inp, b.weight];
      return [
        b.bias ? fwd.bind(rows, [...io, b.bias], params(s)) : fwdNoBias.bind(rows, io, params(s)),
      ];
    },
    backward(b, s) {
      const R = Math.ceil(s.N / ROWS);
      if (R > 65_535) {
        throw new RangeError(`layernorm: N=${s.N} rows exceed ${65_535 * ROWS} (partial-sum grid)`);
      }
      const partialSums = createBuffer(gpu, 2 * R * s.C * 4, "layernorm param partials");
      scratch.push(partialSums);
      const channels = Math.ceil(s.C / 64);
      return [
        bwd.bind(grid(s.N), [b.dinp, b.dout, b.inp, b.weight, b.mean, b.rstd], params(s)),
        partials.bind([channels, R], [partialSums, b.dout, b.inp, b.mean, b.rstd], params(s, R)),
        b.dbias
          ? reduce.bind([channels], [b.dweight, b.dbias, partialSums], params(s, R))
          : reduceNoBias.bind([channels], [b.dweight, partialSums], params(s, R)),
      ];
    },
    destroy() {
      for (const buffer of scratch.splice(0)) buffer.destroy();
    },
  };
}

/**
 * Split-K for the matmul op (src/model/matmul.ts): a product whose grid of output tiles is too
 * small to fill a GPU (GPT-2's dweight products, K = B*T; the classifier's dx, K = Vp = 50,304)
 * is computed as S products over slices of K in one dispatch (workgroup z computes slice z,
 * kernels/matmul.wgsl) into an f32 scratch (S, M, N), then summed in slice order into c by
 * kernels/matmul_split_k.wgsl. The sum's order is fixed, so a given S gives the same bits on
 * every run; different S round differently (within f32 rounding of the same sum).
 *
 * The scratch belongs to the op. It grows when a product needs more; recorded dispatches keep
 * the buffer they bound, so earlier buffers are kept too, and all are freed in destroy(). One
 * product's scratch is at most {@link SPLIT_K_SCRATCH_BYTES} (and one binding): S shrinks to fit.
 */
import type { Gpu } from "../gpu/device.ts";
import { createBuffer } from "../gpu/buffer.ts";
import { type Dispatch, grid, Kernel } from "../gpu/kernel.ts";
import type { Window } from "../gpu/window.ts";
import { specializeStorage, type StorageType } from "../gpu/storage.ts";
import source from "../../kernels/matmul_split_k.wgsl" with { type: "text" };

/** Workgroups a large GPU keeps resident (H100: 132 SMs, two 256-thread workgroups each). */
export const TARGET_WORKGROUPS = 264;
/** Split-K aims for twice the resident workgroups, so that the last wave is not half empty. */
const WANTED_WORKGROUPS = 2 * TARGET_WORKGROUPS;
/** Shortest K slice the default split makes: shorter ones spend more on the sum than they save. */
const MIN_SLICE_K = 256;
/** Most slices of one product. */
export const MAX_SPLIT_K = 32;
/** Largest scratch (S, M, N) of one product, in bytes. */
export const SPLIT_K_SCRATCH_BYTES = 128 * 2 ** 20;

/**
 * The default number of K slices of a product with `workgroups` output tiles: 1 on CPU
 * adapters (where splitting only adds memory traffic) and on grids that fill the GPU, else
 * enough slices for {@link WANTED_WORKGROUPS}, each at least {@link MIN_SLICE_K} long.
 */
export function defaultSplitK(isFallback: boolean, workgroups: number, K: number): number {
  if (isFallback || workgroups >= WANTED_WORKGROUPS) return 1;
  const s = Math.ceil(WANTED_WORKGROUPS / workgroups);
  return Math.max(1, Math.min(s, Math.floor(K / MIN_SLICE_K), MAX_SPLIT_K));
}

/**
 * How `kc` splits into at most `splitK` slices with a scratch of `mc` x `nc` f32 per slice
 * within `maxBytes`: the slice length and the number of slices (1: no split). When `kc` is a
 * multiple of 4 so is the slice length, so that slices keep the 16-byte loads.
 */
export function kSlices(
  splitK: number,
  kc: number,
  mc: number,
  nc: number,
  maxBytes: number,
): { kSlice: number; slices: number } {
  const fit = Math.floor(maxBytes / (mc * nc * 4));
  const wanted = Math.min(splitK, fit, Math.floor(kc / 4));
  if (wanted < 2) return { kSlice: kc, slices: 1 };
  const step = kc % 4 === 0 ? 4 : 1;
  const kSlice = Math.ceil(kc / wanted / step) * step;
  return { kSlice, slices: Math.ceil(kc / kSlice) };
}

/** The scratch and the slice-order sum of one matmul op. */
export interface SplitKSum {
  /** A scratch of at least `bytes` bytes (grown as needed; see the module comment). */
  scratch(bytes: number): GPUBuffer;
  /**
   * c (mc, nc) [=|+=] the sum of `slices` partials in `scratch` (packed (slices, mc, nc) f32)
   * [+ bias], c and bias as windows of their types.
   */
  sum(s: {
    c: Window;
    scratch: GPUBuffer;
    bias: Window | null;
    noBias: GPUBuffer;
    mc: number;
    nc: number;
    ldc: number;
    slices: number;
    accumulate: boolean;
    cType: StorageType;
    biasType: StorageType;
  }): Dispatch;
  destroy(): void;
}

/** Compiles the sum for each (c type, bias type) in `types`. */
export async function createSplitKSum(
  gpu: Gpu,
  types: { c: StorageType; b: StorageType }[],
): Promise<SplitKSum> {
  const kernels = new Map<string, Kernel>();
  await Promise.all(types.map(async ({ c, b }) => {
    const key = `${c} ${b}`;
    if (kernels.has(key)) return;
    const kernel = Kernel.create(gpu, {
      label: `matmul split_k_sum [c ${c}, bias ${b}]`,
      code: specializeStorage(source, { c, bias: b }),
      entryPoint: "split_k_sum",
    });
    kernels.set(key, await kernel);
  }));
  const buffers: GPUBuffer[] = [];
  return {
    scratch(bytes) {
      const last = buffers.at(-1);
      if (last && last.size >= bytes) return last;
      const buffer = createBuffer(gpu, bytes, "matmul split-K scratch");
      buffers.push(buffer);
      return buffer;
    },
    sum(s) {
      const kernel = kernels.get(`${s.cType} ${s.biasType}`);
      if (!kernel) {
        throw new Error(`matmul split-K: no sum compiled for c ${s.cType}, bias ${s.biasType}`);
      }
      const params = new Uint32Array([
        s.mc,
        s.nc,
        s.slices,
        s.ldc,
        s.c.offset,
        s.bias?.offset ?? 0,
        s.accumulate ? 1 : 0,
        s.bias ? 1 : 0,
      ]);
      const bias = s.bias?.range ?? s.noBias;
      return kernel.bind(grid(Math.ceil(s.mc * s.nc / 256)), [s.c.range, s.scratch, bias], params);
    },
    destroy() {
      for (const b of buffers) b.destroy();
      buffers.length = 0;
    },
  };
}

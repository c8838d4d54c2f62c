/**
 * Tile configurations of the matmul kernels (kernels/matmul.wgsl): register blocking per
 * thread, threads per workgroup, and how long a K pass may be on CPU adapters.
 *
 * On CPU adapters a long K is split into passes of at most {@link MatmulTiles.kChunk} when an
 * operand stored with K as its row index (a "km", b "kn") has rows wider than the workgroup's
 * tile: lavapipe runs a workgroup's SIMD rows one after the other, each over all of K, and
 * such a slice is K short pieces spread over K rows of memory, which fall out of cache (and the
 * TLB) before the next SIMD row reads them again. lm_head dinp (K = Vp = 50,304 rows of wte,
 * 64 of its 768 columns per workgroup) ran at 40% of the other products' speed. Operands read
 * along contiguous rows stream well and are left whole: splitting them cost a few percent.
 */
import type { Gpu } from "../gpu/device.ts";

/** Register-blocking configuration of the matmul kernels. */
export interface MatmulTiles {
  /** "regs": no workgroup memory (CPU adapters); "tiled": tiles in workgroup memory (GPUs). */
  entry: "regs" | "tiled";
  /** Threads per workgroup along N and M. */
  WX: number;
  WY: number;
  /** Outputs per thread along M and N. */
  TM: number;
  TN: number;
  /** K step per tile (tiled) or per unrolled block (regs). */
  BK: number;
  /**
   * Largest K of one pass over an operand read in short pieces of many rows (a "km" wider
   * than BM, b "kn" wider than BN); longer such products accumulate passes over K chunks, in
   * order. Default: for "regs", what keeps a workgroup's slices of a and b, (BM + BN) x kChunk f32,
   * within 512 KiB (half a CPU core's L2 here); for "tiled", all of K in one pass.
   */
  kChunk?: number;
}

/**
 * The configurations tested for parity; {@link defaultTiles} picks one per adapter, and the
 * "tiled" ones are the candidates a GPU can choose among (workgroup memory: two buffers of
 * BK x (BM + BN) padded values, all within the 32 KiB of lavapipe, where they are tested).
 */
export const MATMUL_VARIANTS: Record<string, MatmulTiles> = {
  /** 64 x 64 outputs per workgroup of 64 threads, straight from memory (vec4 loads when the
   * shape allows). */
  regs: { entry: "regs", WX: 8, WY: 8, TM: 8, TN: 8, BK: 4 },
  /** 128 x 128 outputs per workgroup of 256 threads, 8 x 8 each, tiles of 8 in K (17 KiB). */
  tiled: { entry: "tiled", WX: 16, WY: 16, TM: 8, TN: 8, BK: 8 },
  /** 64 x 128 outputs per workgroup of 256 threads, 4 x 8 each, tiles of 16 in K (25 KiB):
   * twice the workgroups of "tiled", half the barriers per k. */
  tiled_64x128_bk16: { entry: "tiled", WX: 16, WY: 16, TM: 4, TN: 8, BK: 16 },
  /** 64 x 64 outputs per workgroup of 256 threads, 4 x 4 each, tiles of 16 in K (17 KiB):
   * four times the workgroups of "tiled", for grids that would not fill the GPU. */
  tiled_64_bk16: { entry: "tiled", WX: 16, WY: 16, TM: 4, TN: 4, BK: 16 },
};

/** Bytes of a and b one "regs" workgroup should keep in cache per pass (see kChunk). */
const REGS_PASS_BYTES = 512 * 1024;

/** Register blocking without workgroup memory on software adapters, tiles on real GPUs. */
export function defaultTiles(gpu: Gpu): MatmulTiles {
  return gpu.isFallback ? MATMUL_VARIANTS.regs : MATMUL_VARIANTS.tiled;
}

/**
 * Outputs per workgroup along M (BM) and N (BN), and the longest K pass (see kChunk). Throws
 * when the configuration is invalid: "tiled" needs TM and TN multiples of 4 (vec4 columns and
 * rows), BK a multiple of 8 (operands contiguous in k are staged in runs of 8) and every
 * thread to stage whole vec4s of each tile (TM * BK a multiple of 4 * WX, TN * BK of 4 * WY).
 */
export function tileExtent(t: MatmulTiles): { BM: number; BN: number; kChunk: number } {
  const sizes = [t.WX, t.WY, t.TM, t.TN, t.BK, t.kChunk ?? 1];
  const why = !sizes.every((v) => Number.isInteger(v) && v > 0)
    ? "sizes must be positive integers"
    : t.entry !== "tiled"
    ? ""
    : t.TM % 4 !== 0 || t.TN % 4 !== 0
    ? "TM and TN must be multiples of 4"
    : t.BK % 8 !== 0
    ? "BK must be a multiple of 8"
    : (t.TM * t.BK) % (4 * t.WX) !== 0 || (t.TN * t.BK) % (4 * t.WY) !== 0
    ? "TM * BK must be a multiple of 4 * WX and TN * BK of 4 * WY"
    : "";
  if (why) throw new RangeError(`matmul tiles ${JSON.stringify(t)}: ${why}`);
  const BM = t.WY * t.TM, BN = t.WX * t.TN;
  const kChunk = t.kChunk ??
    (t.entry === "regs" ? Math.floor(REGS_PASS_BYTES / ((BM + BN) * 4)) : Infinity);
  return { BM, BN, kChunk };
}

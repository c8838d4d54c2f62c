/**
 * Tile sizes of the FlashAttention-2 style kernels (kernels/attention_tiled.wgsl), per kernel
 * and head size, shrunk to fit the device's workgroup memory.
 *
 * The defaults keep a thread's live registers under ~96 floats at HS = 64 (H100: 255 registers
 * a thread, 64 KB of them per 128-thread block at 4 blocks an SM) and the workgroup memory
 * under 32 KiB, the smallest limit of the adapters we target (lavapipe, Apple); NVIDIA gives 48.
 */

/** The three attention kernels. */
export type AttentionKernel = "forward" | "dq" | "dkdv";

/** Tile sizes of one kernel, as the WGSL consts of the same names. */
export interface AttentionTiles {
  /** Threads across a row (divides HS / 4): score columns and head vec4 columns are split. */
  TX: number;
  /** Threads down the block. */
  TY: number;
  /** Rows per thread: a workgroup owns BR = RM * TY rows. */
  RM: number;
  /** Score columns per thread: tiles of BC = CN * TX rows stream past. */
  CN: number;
  /** Head tiles of rows, of columns and score tiles the kernel stages (see the WGSL). */
  ROW_TILES: number;
  COL_TILES: number;
  P_TILES: number;
}

/**
 * Tiles of `kernel` at head size `HS` whose workgroup memory fits `limitBytes`;
 * `productBytes` is 2 when the head tiles hold f16 (f16 inner products), else 4.
 * Halves TY, then CN, until it fits; throws when even one row per workgroup does not.
 */
export function attentionTiles(
  kernel: AttentionKernel,
  HS: number,
  productBytes: number,
  limitBytes: number,
): AttentionTiles {
  const HS4 = HS / 4;
  const TX = [8, 4, 2, 1].find((x) => HS4 % x === 0)!;
  const wide = HS > 64; // halve the rows per thread to keep the accumulators in registers
  const tiles: AttentionTiles = {
    forward: { TX, TY: 16, RM: wide ? 2 : 4, CN: 2, ROW_TILES: 1, COL_TILES: 2, P_TILES: 1 },
    dq: { TX, TY: 8, RM: wide ? 2 : 4, CN: 2, ROW_TILES: 2, COL_TILES: 2, P_TILES: 1 },
    dkdv: { TX, TY: 16, RM: wide ? 1 : 2, CN: 2, ROW_TILES: 2, COL_TILES: 2, P_TILES: 2 },
  }[kernel];
  while (workgroupBytes(tiles, HS, productBytes) > limitBytes) {
    if (tiles.TY > 1) tiles.TY /= 2;
    else if (tiles.CN > 1) tiles.CN /= 2;
    else {
      throw new RangeError(
        `attention: the ${kernel} kernel at HS = ${HS} needs ` +
          `${workgroupBytes(tiles, HS, productBytes)} bytes of workgroup memory, over the ` +
          `device's ${limitBytes}`,
      );
    }
  }
  return tiles;
}

/** Bytes of workgroup memory the WGSL declares for `t` (its arrays, in declaration order). */
export function workgroupBytes(t: AttentionTiles, HS: number, productBytes: number): number {
  const BR = t.RM * t.TY, BC = t.CN * t.TX;
  const pad = HS / 4 + 1, vec4 = 4 * productBytes;
  return t.ROW_TILES * BR * pad * vec4 + t.COL_TILES * BC * pad * vec4 +
    4 * (t.P_TILES * BR * (BC + 1) + BR * t.TX + 2 * BC);
}

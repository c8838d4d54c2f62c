/**
 * Checks that every rank holds the same bytes (e.g. the parameters after a step), with one
 * small all-reduce: each rank hashes its data and the ranks sum the hash bytes and their
 * squares. Exact in f32 (bytes < 256, squares < 2^16, up to 256 ranks): the sums equal W times
 * this rank's values on every rank only if all ranks' hash bytes are equal (zero variance).
 */
import type { Communicator } from "./communicator.ts";

/** 32-bit FNV-1a of the bytes of `data`. */
export function fnv1a(data: ArrayBufferView): number {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

/** Throws on every rank, naming `what`, when the ranks' `data` differ. */
export async function checkRanksAgree(
  comm: Communicator,
  data: ArrayBufferView,
  what: string,
): Promise<void> {
  if (comm.worldSize === 1) return;
  if (comm.worldSize > 256) throw new RangeError("checkRanksAgree supports up to 256 ranks");
  const h = fnv1a(data);
  const mine = [0, 8, 16, 24].map((shift) => (h >>> shift) & 0xff);
  const sums = new Float32Array([...mine, ...mine.map((b) => b * b)]);
  await comm.allReduceSum(sums);
  const W = comm.worldSize;
  if (mine.some((b, i) => sums[i] !== W * b || sums[i + 4] !== W * b * b)) {
    throw new Error(`${what} differ between ranks (rank ${comm.rank} hash ${h.toString(16)})`);
  }
}

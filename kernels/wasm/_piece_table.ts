// deno-lint-ignore-file verbatim-module-syntax -- AssemblyScript has no `import type`
// Byte string -> token ids, for whole pieces: the vocabulary (a piece that is a token is
// that token, as in tiktoken, even where BPE would not reach it) plus a cache of BPE results
// (most pieces repeat). Open addressing with linear probing; a slot is {u32 hash, u32 entry}.
// An entry in the arena is {u32 byteLength, u32 idCount, bytes padded to 4, u32 ids[]}.

import { align4, Ctx } from "./_context";
import { sameBytes } from "./_hash";

/** Pieces longer than this are not cached (rare, and they would crowd the arena). */
export const MAX_CACHED_BYTES: usize = 128;

/** Bytes of arena set aside for cached pieces. */
export const CACHE_ARENA_BYTES: usize = 8 << 20;

/** Entry for the n bytes at p (hash h), or 0. */
export function findPiece(ctx: Ctx, p: usize, n: usize, h: u32): usize {
  const slots = ctx.slots;
  const mask = ctx.slotMask;
  let i = h & mask;
  while (true) {
    const slot = slots + (<usize> i << 3);
    const entry = <usize> load<u32>(slot, 4);
    if (!entry) return 0;
    if (load<u32>(slot) == h && <usize> load<u32>(entry) == n && sameBytes(entry + 8, p, n)) {
      return entry;
    }
    i = (i + 1) & mask;
  }
}

/** Token ids of an entry, and their count. */
export function entryIds(entry: usize): usize {
  return entry + 8 + align4(<usize> load<u32>(entry));
}

export function entryIdCount(entry: usize): usize {
  return <usize> load<u32>(entry, 4);
}

/** Adds an entry for n bytes at p (hash h, known absent) with count ids at `ids`. */
export function addPiece(ctx: Ctx, p: usize, n: usize, h: u32, ids: usize, count: usize): void {
  const size: usize = 8 + align4(n) + (count << 2);
  if (ctx.slotCount >= ctx.slotLimit || ctx.arenaTop + size + 8 > ctx.arenaEnd) dropCache(ctx);
  const entry = ctx.arenaTop;
  store<u32>(entry, <u32> n);
  store<u32>(entry, <u32> count, 4);
  memory.copy(entry + 8, p, n);
  memory.copy(entryIds(entry), ids, count << 2);
  ctx.arenaTop = entry + size;
  const mask = ctx.slotMask;
  let i = h & mask;
  while (load<u32>(ctx.slots + (<usize> i << 3), 4)) i = (i + 1) & mask;
  const slot = ctx.slots + (<usize> i << 3);
  store<u32>(slot, h);
  store<u32>(slot, <u32> entry, 4);
  ctx.slotCount++;
}

/** Forgets every cached piece, keeping the vocabulary. */
export function dropCache(ctx: Ctx): void {
  memory.copy(ctx.slots, ctx.vocabSlots, (<usize> ctx.slotMask + 1) << 3);
  ctx.slotCount = ctx.vocabSlotCount;
  ctx.arenaTop = ctx.vocabArenaTop;
}

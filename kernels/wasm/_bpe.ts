// deno-lint-ignore-file verbatim-module-syntax -- AssemblyScript has no `import type`
// Byte-pair merging of one piece, tiktoken's way: start from one token per byte and, while
// some adjacent pair merges, merge the pair of lowest rank (leftmost among equals).
// Quadratic in the piece length, like tiktoken: fine for words; longer pieces go to
// _bpe_long.ts.

import { Ctx, NO_MERGE, reallocate } from "./_context";
import { pairValue } from "./_pair_table";
import { bytePairMergeLong } from "./_bpe_long";

/** Pieces longer than this (bytes) merge with the heap of _bpe_long.ts. */
const LONG_PIECE: usize = 128;

/** Grows the scratch to hold a piece of n bytes. */
function reserveParts(ctx: Ctx, n: usize): void {
  if (n <= ctx.partsCap) return;
  const cap = max<usize>(n, ctx.partsCap << 1);
  ctx.partPairs = reallocate(ctx.partPairs, cap << 3);
  ctx.partIds = reallocate(ctx.partIds, cap << 2);
  ctx.partsCap = cap;
}

/**
 * Merges the n (>= 2) bytes at p; leaves the ids in ctx.partIds (u32[count]) and returns
 * count. partPairs[i] (u64) is the merge value of (ids[i], ids[i + 1]).
 */
export function bytePairMerge(ctx: Ctx, p: usize, n: usize): usize {
  reserveParts(ctx, n);
  const ids = ctx.partIds;
  const pairs = ctx.partPairs;
  const byteTokens = ctx.byteTokens;
  for (let i: usize = 0; i < n; i++) {
    store<u32>(ids + (i << 2), load<u32>(byteTokens + (<usize> load<u8>(p + i) << 2)));
  }
  if (n > LONG_PIECE) return bytePairMergeLong(ctx, ids, n);
  for (let i: usize = 0; i + 1 < n; i++) {
    store<u64>(
      pairs + (i << 3),
      pairValue(ctx, load<u32>(ids + (i << 2)), load<u32>(ids + (i << 2), 4)),
    );
  }
  let count = n;
  while (count > 1) {
    let best = NO_MERGE;
    let at: usize = 0;
    for (let i: usize = 0; i + 1 < count; i++) {
      const v = load<u64>(pairs + (i << 3));
      if (v < best) {
        best = v;
        at = i;
      }
    }
    if (best == NO_MERGE) break;
    // ids[at] becomes the merged token; ids[at + 1] and pairs[at + 1] leave.
    store<u32>(ids + (at << 2), <u32> best);
    memory.copy(ids + ((at + 1) << 2), ids + ((at + 2) << 2), (count - at - 2) << 2);
    if (at + 3 < count) {
      memory.copy(pairs + ((at + 1) << 3), pairs + ((at + 2) << 3), (count - at - 3) << 3);
    }
    count--;
    const merged = <u32> best;
    if (at > 0) {
      store<u64>(pairs + ((at - 1) << 3), pairValue(ctx, load<u32>(ids + ((at - 1) << 2)), merged));
    }
    if (at + 1 < count) {
      store<u64>(pairs + (at << 3), pairValue(ctx, merged, load<u32>(ids + ((at + 1) << 2))));
    }
  }
  return count;
}

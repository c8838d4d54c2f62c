// deno-lint-ignore-file verbatim-module-syntax -- AssemblyScript has no `import type`
// Byte-pair merging of a long piece (base64, DNA, a run of CJK) in O(n log n): the same merges
// as _bpe.ts's quadratic loop, in the same order, found with a min-heap of candidate pairs
// keyed (rank << 32 | left part) over a linked list of parts. Parts are named by the index
// of their first byte; a merge keeps the left part and unlinks the right one.

import { Ctx, NO_MERGE, reallocate } from "./_context";
import { pairValue } from "./_pair_table";

/** "No neighbour" in the linked list. */
const NONE: u32 = 0xffffffff;

/** Grows the long-piece scratch (next, prev: u32; pair: u64; heap: 3 u64, per byte). */
function reserveLong(ctx: Ctx, n: usize): void {
  if (n <= ctx.longCap) return;
  const cap = max<usize>(n, ctx.longCap << 1);
  ctx.longScratch = reallocate(ctx.longScratch, cap * 40);
  ctx.longCap = cap;
}

function heapPush(heap: usize, size: usize, key: u64): usize {
  let i = size;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    const up = load<u64>(heap + (parent << 3));
    if (up <= key) break;
    store<u64>(heap + (i << 3), up);
    i = parent;
  }
  store<u64>(heap + (i << 3), key);
  return size + 1;
}

/** Removes the smallest key (returned by the caller's read of heap[0] beforehand). */
function heapPop(heap: usize, size: usize): usize {
  const last = load<u64>(heap + ((size - 1) << 3));
  size--;
  let i: usize = 0;
  while (true) {
    let child: usize = 2 * i + 1;
    if (child >= size) break;
    let c = load<u64>(heap + (child << 3));
    if (child + 1 < size) {
      const c2 = load<u64>(heap + ((child + 1) << 3));
      if (c2 < c) {
        c = c2;
        child++;
      }
    }
    if (last <= c) break;
    store<u64>(heap + (i << 3), c);
    i = child;
  }
  if (size) store<u64>(heap + (i << 3), last);
  return size;
}

/**
 * Merges the n bytes whose single-byte ids are already in ids (u32[n]); compacts the result
 * into ids[0 .. count) and returns count.
 */
export function bytePairMergeLong(ctx: Ctx, ids: usize, n: usize): usize {
  reserveLong(ctx, n);
  const next = ctx.longScratch;
  const prev = next + (n << 2);
  const pair = prev + (n << 2); // merge value of (part, its next part); NO_MERGE when dead
  const heap = pair + (n << 3);
  let size: usize = 0;
  for (let i: usize = 0; i < n; i++) {
    store<u32>(next + (i << 2), i + 1 < n ? <u32> (i + 1) : NONE);
    store<u32>(prev + (i << 2), i > 0 ? <u32> (i - 1) : NONE);
    const v = i + 1 < n
      ? pairValue(ctx, load<u32>(ids + (i << 2)), load<u32>(ids + (i << 2), 4))
      : NO_MERGE;
    store<u64>(pair + (i << 3), v);
    if (v != NO_MERGE) size = heapPush(heap, size, (v & 0xffffffff00000000) | <u64> i);
  }
  while (size) {
    const key = load<u64>(heap);
    size = heapPop(heap, size);
    const left = <usize> (key & 0xffffffff);
    const v = load<u64>(pair + (left << 3));
    // Stale: the part died, or its right neighbour changed since this key was pushed.
    if (v == NO_MERGE || (v >> 32) != (key >> 32)) continue;
    const right = <usize> load<u32>(next + (left << 2));
    const after = load<u32>(next + (right << 2));
    const merged = <u32> v;
    store<u32>(ids + (left << 2), merged);
    store<u32>(next + (left << 2), after);
    if (after != NONE) store<u32>(prev + (<usize> after << 2), <u32> left);
    store<u64>(pair + (right << 3), NO_MERGE);
    const v1 = after != NONE
      ? pairValue(ctx, merged, load<u32>(ids + (<usize> after << 2)))
      : NO_MERGE;
    store<u64>(pair + (left << 3), v1);
    if (v1 != NO_MERGE) size = heapPush(heap, size, (v1 & 0xffffffff00000000) | <u64> left);
    const before = load<u32>(prev + (left << 2));
    if (before != NONE) {
      const b = <usize> before;
      const v0 = pairValue(ctx, load<u32>(ids + (b << 2)), merged);
      if (v0 != load<u64>(pair + (b << 3))) {
        store<u64>(pair + (b << 3), v0);
        if (v0 != NO_MERGE) size = heapPush(heap, size, (v0 & 0xffffffff00000000) | <u64> b);
      }
    }
  }
  let count: usize = 0;
  for (let i: u32 = 0; i != NONE; i = load<u32>(next + (<usize> i << 2))) {
    store<u32>(ids + (count << 2), load<u32>(ids + (<usize> i << 2)));
    count++;
  }
  return count;
}

// deno-lint-ignore-file verbatim-module-syntax -- AssemblyScript has no `import type`
// (left id, right id) -> what merging them gives, as one u64: rank << 32 | merged id, so that
// the smallest value is the pair to merge first and NO_MERGE (all ones) never merges.
// Following tiktoken, a pair merges when the concatenation of its bytes is a token, whatever
// merge built that token: the table holds every split of every token into two tokens.
// Open addressing with linear probing; a slot is {u64 key = left << 32 | right, u64 value}.

import { Ctx, NO_MERGE } from "./_context";
import { hashPair } from "./_hash";

/** Key of an empty slot (no token id is 2^32 - 1). */
export const EMPTY_KEY: u64 = 0xffffffffffffffff;

/** Merge value of the pair (a, b), or NO_MERGE. */
export function pairValue(ctx: Ctx, a: u32, b: u32): u64 {
  const key = (<u64> a << 32) | <u64> b;
  const pairs = ctx.pairs;
  const mask = ctx.pairMask;
  let i = hashPair(key) & mask;
  while (true) {
    const slot = pairs + (<usize> i << 4);
    const k = load<u64>(slot);
    if (k == key) return load<u64>(slot, 8);
    if (k == EMPTY_KEY) return NO_MERGE;
    i = (i + 1) & mask;
  }
}

/** Sets the merge value of (a, b). */
export function setPair(ctx: Ctx, a: u32, b: u32, value: u64): void {
  const key = (<u64> a << 32) | <u64> b;
  const mask = ctx.pairMask;
  let i = hashPair(key) & mask;
  while (true) {
    const slot = ctx.pairs + (<usize> i << 4);
    const k = load<u64>(slot);
    if (k == key || k == EMPTY_KEY) {
      store<u64>(slot, key);
      store<u64>(slot, value, 8);
      return;
    }
    i = (i + 1) & mask;
  }
}

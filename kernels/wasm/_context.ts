// One tokenizer's state. A WebAssembly instance holds any number of them (one per Tokenizer
// object in a JS realm); memory comes from the stub runtime's bump allocator.

/** Rank of a token that no merge produces (special tokens such as <|endoftext|>). */
export const NO_RANK: u32 = 0xffffffff;

/** Pair-table value meaning "these two tokens do not merge"; see _pair_table.ts. */
export const NO_MERGE: u64 = 0xffffffffffffffff;

// @ts-ignore: decorator
@unmanaged
export class Ctx {
  vocabSize: u32;
  /** Vocabulary from JS, by token id: offsets u32[vocabSize + 1] into bytes (+8 slack). */
  offsets: usize;
  bytes: usize;
  /** u32[vocabSize]: merge rank (lower merges first), NO_RANK for special tokens. */
  ranks: usize;
  /** u32[256]: the id of each single-byte token. */
  byteTokens: usize;

  /** Piece table (see _piece_table.ts): slots, their mask, count and cap. */
  slots: usize;
  slotMask: u32;
  slotCount: u32;
  slotLimit: u32;
  /** Copy of the slots holding only the vocabulary, restored when the cache is dropped. */
  vocabSlots: usize;
  vocabSlotCount: u32;
  /** Arena holding the entries the slots point at; the vocabulary's entries come first. */
  arena: usize;
  arenaTop: usize;
  arenaEnd: usize;
  vocabArenaTop: usize;

  /** Pair table (see _pair_table.ts) and its mask. */
  pairs: usize;
  pairMask: u32;

  /** BPE scratch for a piece of up to partsCap bytes: u32 ids and u64 pair values. */
  partIds: usize;
  partPairs: usize;
  partsCap: usize;
  /** Scratch of _bpe_long.ts, for pieces of up to longCap bytes. */
  longScratch: usize;
  longCap: usize;

  /** Text in (UTF-8, +8 slack) and ids out. */
  input: usize;
  inputCap: usize;
  output: usize;
  outputCap: usize;
}

/** Frees `old` (the stub runtime reclaims it only if it is the last block) and allocates. */
export function reallocate(old: usize, size: usize): usize {
  if (old) heap.free(old);
  return heap.alloc(size);
}

/** Rounds n up to a multiple of 4. */
export function align4(n: usize): usize {
  return (n + 3) & ~(<usize> 3);
}

// deno-lint-ignore-file verbatim-module-syntax -- AssemblyScript has no `import type`
// GPT-2 byte-level BPE encoding (tiktoken's r50k_base semantics) in AssemblyScript.
// Built by `deno task build:wasm` into tokenizer.wasm; src/tokenizer/ is its TypeScript face.
//
// Protocol, per tokenizer (a Ctx pointer; an instance can hold several):
//   create(vocabSize, byteCount) -> ctx; JS fills vocabOffsets/vocabRanks/vocabBytes;
//   build(ctx) -> 0, or 1 + b when byte b has no single-byte token;
//   reserveInput(ctx, n) -> pointer for n bytes of UTF-8; encode(ctx, n) -> id count, with
//   the ids at outputIds(ctx). Any call may grow memory: JS re-reads memory.buffer after it.

import { bytePairMerge } from "./_bpe";
import { align4, Ctx, NO_RANK, reallocate } from "./_context";
import { hashBytes } from "./_hash";
import { setPair } from "./_pair_table";
import {
  addPiece,
  CACHE_ARENA_BYTES,
  entryIdCount,
  entryIds,
  findPiece,
  MAX_CACHED_BYTES,
} from "./_piece_table";
import { pieceEnd } from "./_pretokenize";

/** Smallest power of two >= n. */
function pow2AtLeast(n: usize): usize {
  let c: usize = 16;
  while (c < n) c <<= 1;
  return c;
}

/** Allocates a tokenizer and the buffers JS fills with its vocabulary. */
export function create(vocabSize: u32, byteCount: u32): usize {
  const ctx = changetype<Ctx>(heap.alloc(offsetof<Ctx>()));
  memory.fill(changetype<usize>(ctx), 0, offsetof<Ctx>());
  ctx.vocabSize = vocabSize;
  ctx.offsets = heap.alloc((<usize> vocabSize + 1) << 2);
  ctx.ranks = heap.alloc(<usize> vocabSize << 2);
  ctx.bytes = heap.alloc(<usize> byteCount + 8);
  return changetype<usize>(ctx);
}

/** u32[vocabSize + 1] for JS to fill: token id's bytes are bytes[offsets[id] .. offsets[id + 1]). */
export function vocabOffsets(ctx: usize): usize {
  return changetype<Ctx>(ctx).offsets;
}

/** u32[vocabSize] for JS to fill: merge rank of each id, NO_RANK if it never merges. */
export function vocabRanks(ctx: usize): usize {
  return changetype<Ctx>(ctx).ranks;
}

/** The spelled tokens, for JS to fill (byteCount bytes). */
export function vocabBytes(ctx: usize): usize {
  return changetype<Ctx>(ctx).bytes;
}

function tokenStart(ctx: Ctx, id: usize): usize {
  return ctx.bytes + <usize> load<u32>(ctx.offsets + (id << 2));
}

function tokenLength(ctx: Ctx, id: usize): usize {
  return <usize> (load<u32>(ctx.offsets + (id << 2), 4) - load<u32>(ctx.offsets + (id << 2)));
}

/** Id of the mergeable token spelled by the n bytes at p, or -1. */
function tokenId(ctx: Ctx, p: usize, n: usize): i64 {
  const entry = findPiece(ctx, p, n, hashBytes(p, n));
  return entry ? <i64> load<u32>(entryIds(entry)) : -1;
}

/** Builds the piece and pair tables from the vocabulary; see the protocol above. */
export function build(ctxPtr: usize): u32 {
  const ctx = changetype<Ctx>(ctxPtr);
  const vocabSize = <usize> ctx.vocabSize;
  ctx.byteTokens = heap.alloc(256 << 2);
  memory.fill(ctx.byteTokens, 0xff, 256 << 2);
  let mergeable: usize = 0;
  let arenaBytes: usize = 0;
  let splits: usize = 0;
  for (let id: usize = 0; id < vocabSize; id++) {
    if (load<u32>(ctx.ranks + (id << 2)) == NO_RANK) continue;
    const n = tokenLength(ctx, id);
    const slot = ctx.byteTokens + (<usize> load<u8>(tokenStart(ctx, id)) << 2);
    if (n == 1 && load<u32>(slot) == NO_RANK) store<u32>(slot, <u32> id);
    mergeable++;
    arenaBytes += 8 + align4(n) + 4;
    splits += n - 1;
  }
  for (let b: u32 = 0; b < 256; b++) {
    if (load<u32>(ctx.byteTokens + (<usize> b << 2)) == NO_RANK) return b + 1;
  }

  // Piece table: the vocabulary, then room for the cache.
  const slotCount = pow2AtLeast(max<usize>(mergeable << 2, 1 << 18));
  ctx.slots = heap.alloc(slotCount << 3);
  memory.fill(ctx.slots, 0, slotCount << 3);
  ctx.slotMask = <u32> (slotCount - 1);
  ctx.slotLimit = <u32> (slotCount >> 1);
  ctx.arena = heap.alloc(arenaBytes + CACHE_ARENA_BYTES + 8);
  ctx.arenaTop = ctx.arena;
  ctx.arenaEnd = ctx.arena + arenaBytes + CACHE_ARENA_BYTES;
  const one = heap.alloc(4);
  for (let id: usize = 0; id < vocabSize; id++) {
    if (load<u32>(ctx.ranks + (id << 2)) == NO_RANK) continue;
    const p = tokenStart(ctx, id);
    const n = tokenLength(ctx, id);
    const h = hashBytes(p, n);
    if (findPiece(ctx, p, n, h)) continue; // a duplicate spelling: the first id wins
    store<u32>(one, <u32> id);
    addPiece(ctx, p, n, h, one, 1);
  }

  // Pair table: every split of a mergeable token into two mergeable tokens, sized for all
  // splits (about 2.5x the pairs found for GPT-2, a load factor under 1/2 whatever happens).
  const pairSlots = pow2AtLeast(splits + (splits >> 1));
  ctx.pairs = heap.alloc(pairSlots << 4);
  memory.fill(ctx.pairs, 0xff, pairSlots << 4);
  ctx.pairMask = <u32> (pairSlots - 1);
  for (let id: usize = 0; id < vocabSize; id++) {
    const rank = load<u32>(ctx.ranks + (id << 2));
    if (rank == NO_RANK) continue;
    const p = tokenStart(ctx, id);
    const n = tokenLength(ctx, id);
    for (let k: usize = 1; k < n; k++) {
      const a = tokenId(ctx, p, k);
      if (a < 0) continue;
      const b = tokenId(ctx, p + k, n - k);
      if (b >= 0) setPair(ctx, <u32> a, <u32> b, (<u64> rank << 32) | <u64> id);
    }
  }

  ctx.vocabSlots = heap.alloc(slotCount << 3);
  memory.copy(ctx.vocabSlots, ctx.slots, slotCount << 3);
  ctx.vocabSlotCount = ctx.slotCount;
  ctx.vocabArenaTop = ctx.arenaTop;
  return 0;
}

/** Pointer to room for n bytes of UTF-8 text (with the 8 bytes of slack hashing needs). */
export function reserveInput(ctxPtr: usize, n: u32): usize {
  const ctx = changetype<Ctx>(ctxPtr);
  if (<usize> n + 8 > ctx.inputCap) {
    ctx.inputCap = max<usize>(<usize> n + 8, ctx.inputCap << 1);
    ctx.input = reallocate(ctx.input, ctx.inputCap);
  }
  return ctx.input;
}

/** Encodes the n bytes at the input; returns the id count, ids at outputIds(ctx). */
export function encode(ctxPtr: usize, n: u32): u32 {
  const ctx = changetype<Ctx>(ctxPtr);
  const outBytes = <usize> n << 2; // at most one id per byte
  if (outBytes > ctx.outputCap) {
    ctx.outputCap = max<usize>(outBytes, ctx.outputCap << 1);
    ctx.output = reallocate(ctx.output, ctx.outputCap);
  }
  const byteTokens = ctx.byteTokens;
  const end = ctx.input + n;
  let p = ctx.input;
  let out = ctx.output;
  while (p < end) {
    const q = pieceEnd(p, end);
    const len = q - p;
    if (len == 1) {
      store<u32>(out, load<u32>(byteTokens + (<usize> load<u8>(p) << 2)));
      out += 4;
    } else {
      const h = hashBytes(p, len);
      const entry = findPiece(ctx, p, len, h);
      if (entry) {
        const count = entryIdCount(entry);
        if (count == 1) store<u32>(out, load<u32>(entryIds(entry)));
        else memory.copy(out, entryIds(entry), count << 2);
        out += count << 2;
      } else {
        const count = bytePairMerge(ctx, p, len);
        memory.copy(out, ctx.partIds, count << 2);
        if (len <= MAX_CACHED_BYTES) addPiece(ctx, p, len, h, ctx.partIds, count);
        out += count << 2;
      }
    }
    p = q;
  }
  return <u32> ((out - ctx.output) >> 2);
}

/** Where encode() left its ids (u32[count]). */
export function outputIds(ctx: usize): usize {
  return changetype<Ctx>(ctx).output;
}

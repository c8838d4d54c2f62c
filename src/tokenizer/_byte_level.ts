/**
 * GPT-2's byte-level vocabulary files (OpenAI's encoder.json + vocab.bpe, the same as Hugging
 * Face's vocab.json + merges.txt) turned into the flat arrays the WASM encoder takes.
 * @module
 */

/** Ids must be below this (the tables are dense by id). */
const MAX_VOCAB = 1 << 24;

/** Rank of a token that no merge produces (special tokens such as <|endoftext|>). */
export const NO_RANK = 0xffffffff;

/**
 * GPT-2's `bytes_to_unicode`: byte b is written as the character with code BYTE_CHAR[b]
 * (printable Latin-1 bytes as themselves, the other 68 bytes as U+0100 onwards).
 */
const BYTE_CHAR: Uint16Array = (() => {
  const chars = new Uint16Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
    chars[b] = printable ? b : next++;
  }
  return chars;
})();

/** Inverse of BYTE_CHAR: character code -> byte, -1 outside the alphabet. */
const CHAR_BYTE: Int16Array = (() => {
  const bytes = new Int16Array(256 + 68).fill(-1);
  BYTE_CHAR.forEach((c, b) => bytes[c] = b);
  return bytes;
})();

/** The vocabulary by token id, as the WASM encoder and the decoder read it. */
export interface VocabTables {
  /** Largest id + 1. */
  vocabSize: number;
  /** (vocabSize + 1): token id's bytes are bytes[offsets[id] .. offsets[id + 1]). */
  offsets: Uint32Array;
  bytes: Uint8Array;
  /** (vocabSize): merge rank (lower merges first), NO_RANK for special tokens and gaps. */
  ranks: Uint32Array;
  /** Ids that name no token (gaps in the id range): decoding them is an error. */
  missing: Set<number>;
}

/**
 * Writes a token's bytes at out[at..] and returns their count, or -1 when some character is
 * outside the byte-level alphabet.
 */
function writeSpelling(token: string, out: Uint8Array, at: number): number {
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    const b = c < CHAR_BYTE.length ? CHAR_BYTE[c] : -1;
    if (b < 0) return -1;
    out[at + i] = b;
  }
  return token.length;
}

/**
 * Builds the tables from a byte-level BPE vocabulary (token string -> id) and its merges
 * (one "left right" pair per line, optional "#version" first line). Ranks follow tiktoken's
 * GPT-2 loader: single bytes first, then merge i ranks 256 + i. `source` names the files in
 * errors.
 */
export function byteLevelVocab(
  vocab: Record<string, number>,
  merges: string,
  source: string,
): VocabTables {
  const tokens = Object.keys(vocab);
  const ids = new Int32Array(tokens.length);
  let vocabSize = 0, spelled = 0;
  tokens.forEach((token, i) => {
    const id = vocab[token];
    if (!Number.isInteger(id) || id < 0 || id >= MAX_VOCAB) {
      throw new RangeError(`${source}: token ${JSON.stringify(token)} has invalid id ${id}`);
    }
    if (token.length === 0) throw new RangeError(`${source}: empty token (id ${id})`);
    ids[i] = id;
    vocabSize = Math.max(vocabSize, id + 1);
    spelled += token.length * 3;
  });

  // Spell every token into one buffer, in key order: start and length by id.
  const spelling = new Uint8Array(spelled);
  const starts = new Uint32Array(vocabSize);
  const lengths = new Uint32Array(vocabSize);
  const ranks = new Uint32Array(vocabSize).fill(NO_RANK);
  const utf8 = new TextEncoder();
  let at = 0;
  tokens.forEach((token, i) => {
    const id = ids[i];
    if (lengths[id]) throw new RangeError(`${source}: id ${id} is used by more than one token`);
    let length = writeSpelling(token, spelling, at);
    if (length === 1) ranks[id] = spelling[at];
    // Added tokens written outside the alphabet keep their text's UTF-8 and never merge.
    if (length < 0) length = utf8.encodeInto(token, spelling.subarray(at)).written;
    starts[id] = at;
    lengths[id] = length;
    at += length;
  });

  const lines = merges.split("\n");
  let rank = 256;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].endsWith("\r") ? lines[i].slice(0, -1) : lines[i];
    if (line === "" || (i === 0 && line.startsWith("#version"))) continue;
    const space = line.indexOf(" ");
    if (space <= 0 || space === line.length - 1 || line.includes(" ", space + 1)) {
      throw new SyntaxError(`${source}: merges line ${i + 1} is not "left right": ${line}`);
    }
    const merged = line.slice(0, space) + line.slice(space + 1);
    const id = Object.hasOwn(vocab, merged) ? vocab[merged] : undefined;
    if (id === undefined) {
      throw new RangeError(
        `${source}: merges line ${i + 1} (${line}) makes ${JSON.stringify(merged)}, ` +
          "which is not in the vocabulary",
      );
    }
    if (ranks[id] === NO_RANK) ranks[id] = rank;
    rank++;
  }

  const offsets = new Uint32Array(vocabSize + 1);
  const missing = new Set<number>();
  for (let id = 0; id < vocabSize; id++) {
    if (lengths[id] === 0) missing.add(id);
    offsets[id + 1] = offsets[id] + lengths[id];
  }
  const bytes = new Uint8Array(offsets[vocabSize]);
  for (let id = 0; id < vocabSize; id++) {
    for (let k = 0, from = starts[id], to = offsets[id]; k < lengths[id]; k++) {
      bytes[to + k] = spelling[from + k];
    }
  }
  return { vocabSize, offsets, bytes, ranks, missing };
}

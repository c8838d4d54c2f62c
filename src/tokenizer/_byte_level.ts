/**
 * GPT-2's byte-level vocabulary files (OpenAI's encoder.json + vocab.bpe, the same as Hugging
 * Face's vocab.json + merges.txt) turned into the flat arrays the WASM encoder takes.
 * @module
 */

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

/** A token's bytes, or null when some character is outside the byte-level alphabet. */
function spellingBytes(token: string): Uint8Array | null {
  const out = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    const b = c < CHAR_BYTE.length ? CHAR_BYTE[c] : -1;
    if (b < 0) return null;
    out[i] = b;
  }
  return out;
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
  const entries = Object.entries(vocab);
  let vocabSize = 0;
  for (const [token, id] of entries) {
    if (!Number.isInteger(id) || id < 0 || id >= 2 ** 31) {
      throw new RangeError(`${source}: token ${JSON.stringify(token)} has invalid id ${id}`);
    }
    if (token.length === 0) throw new RangeError(`${source}: empty token (id ${id})`);
    vocabSize = Math.max(vocabSize, id + 1);
  }
  const spellings: (Uint8Array | undefined)[] = new Array(vocabSize);
  const ranks = new Uint32Array(vocabSize).fill(NO_RANK);
  const encoder = new TextEncoder();
  for (const [token, id] of entries) {
    if (spellings[id]) {
      throw new RangeError(`${source}: id ${id} is used by more than one token`);
    }
    const bytes = spellingBytes(token);
    // Added tokens written outside the alphabet keep their text's UTF-8 and never merge.
    spellings[id] = bytes ?? encoder.encode(token);
    if (bytes?.length === 1) ranks[id] = bytes[0];
  }

  const lines = merges.split("\n");
  let rank = 256;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].endsWith("\r") ? lines[i].slice(0, -1) : lines[i];
    if (line === "" || (i === 0 && line.startsWith("#version"))) continue;
    const pair = line.split(" ");
    if (pair.length !== 2 || !pair[0] || !pair[1]) {
      throw new SyntaxError(`${source}: merges line ${i + 1} is not "left right": ${line}`);
    }
    const merged = pair[0] + pair[1];
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
    const length = spellings[id]?.length ?? 0;
    if (length === 0) missing.add(id);
    offsets[id + 1] = offsets[id] + length;
  }
  const bytes = new Uint8Array(offsets[vocabSize]);
  spellings.forEach((s, id) => bytes.set(s!, offsets[id]));
  return { vocabSize, offsets, bytes, ranks, missing };
}

/**
 * Token shard files: the llm.c format and nanoGPT's headerless format.
 *
 * llm.c shard: 256 little-endian int32 header words ([0] = 20240520 magic, [1] = 1 version,
 * [2] = token count), then `count` uint16 LE tokens. nanoGPT / repgpt `train.bin` / `val.bin`:
 * uint16 LE tokens only, no header.
 *
 * The name decides the format, so a damaged header is never read as tokens: a file named like
 * llm.c's shards (`NAME_train_000001.bin`) must carry its header; headerless tokens are read only
 * from `train.bin` / `val.bin` or when the caller says so (`format: "raw"`).
 *
 * {@link ShardReader} validates the header against the file size when it opens a file and checks
 * every token it returns against the vocabulary, so a bad file is an error naming the file and
 * the reason, never a silent wrong read.
 */

import { basename } from "node:path";

/** llm.c's token-shard magic number (header word 0). */
export const SHARD_MAGIC = 20240520;
/** The one llm.c token-shard version (header word 1). */
export const SHARD_VERSION = 1;
/** Header size in int32 words (1024 bytes). */
export const SHARD_HEADER_WORDS = 256;
/** Header size in bytes. */
export const SHARD_HEADER_BYTES = SHARD_HEADER_WORDS * 4;
/** GPT-2's vocabulary size: tokens must be below it. */
export const GPT2_VOCAB = 50257;
/** The header's token count is an int32. */
export const MAX_SHARD_TOKENS = 2 ** 31 - 1;

/** llm.c's shard names, `NAME_train_NNNNNN.bin` / `NAME_val_NNNNNN.bin`: [1] name, [2] split. */
export const LLMC_SHARD_NAME = /^(.+)_(train|val)_(\d+)\.bin$/;
/** nanoGPT's headerless token files. */
const NANOGPT_NAME = /^(train|val)\.bin$/;

/** Other first words a user may feed us by mistake, and what they are. */
const OTHER_MAGICS: Readonly<Record<number, string>> = {
  20240801: "llm.c's Llama-3 token shard magic: uint32 tokens of another tokenizer, not GPT-2's",
  20240522: "llm.c's HellaSwag eval file magic, not a token shard",
  20240326: "llm.c's GPT-2 model file magic, not a token shard",
};

/** "llmc": 1024-byte header; "raw": headerless uint16 tokens (nanoGPT `train.bin`). */
export type ShardFormat = "llmc" | "raw";

/** A bad shard: the message names the file and the reason. */
export class ShardError extends Error {
  override name = "ShardError";
}

/** The 1024-byte llm.c header for a shard of `tokens` tokens. */
export function shardHeader(tokens: number): Uint8Array {
  if (!Number.isInteger(tokens) || tokens < 0 || tokens > MAX_SHARD_TOKENS) {
    throw new RangeError(`shard token count ${tokens} is not in [0, ${MAX_SHARD_TOKENS}]`);
  }
  const header = new Uint8Array(SHARD_HEADER_BYTES);
  const view = new DataView(header.buffer);
  view.setInt32(0, SHARD_MAGIC, true);
  view.setInt32(4, SHARD_VERSION, true);
  view.setInt32(8, tokens, true);
  return header;
}

/** Where the tokens of a shard file are. */
export interface ShardInfo {
  path: string;
  format: ShardFormat;
  /** Byte offset of token 0. */
  dataOffset: number;
  /** Number of tokens. */
  tokens: number;
}

/**
 * Read and check a shard's header against its size. The format is `format` when given, else
 * decided by the name (see the module doc): an llm.c-named file whose first word is not the
 * magic is an error naming the word found. A `train.bin` / `val.bin` that starts with the magic
 * is read as llm.c (a headerless GPT-2 file cannot: its first token would be 0xD5C8 = 54728).
 */
export function shardInfo(path: string, format?: ShardFormat): ShardInfo {
  let size: number;
  let head: Uint8Array;
  try {
    size = Deno.statSync(path).size;
    using file = Deno.openSync(path);
    head = new Uint8Array(Math.min(size, SHARD_HEADER_BYTES));
    readFully(file, head, 0, path);
  } catch (e) {
    if (e instanceof ShardError) throw e;
    throw new ShardError(`${path}: cannot read: ${(e as Error).message}`);
  }
  if (size === 0) throw new ShardError(`${path}: empty file, no tokens`);
  const view = new DataView(head.buffer);
  const magic = head.length >= 4 ? view.getInt32(0, true) : 0;
  const name = basename(path);
  const raw = format === "raw" ||
    (format === undefined && NANOGPT_NAME.test(name) && magic !== SHARD_MAGIC);
  if (raw) {
    if (size % 2 !== 0) {
      throw new ShardError(
        `${path}: headerless uint16 token file with an odd byte length ${size}`,
      );
    }
    return { path, format: "raw", dataOffset: 0, tokens: size / 2 };
  }
  if (magic !== SHARD_MAGIC) {
    const what = OTHER_MAGICS[magic] ? ` (${OTHER_MAGICS[magic]})` : "";
    const rule = format === "llmc"
      ? "llm.c shards start with it"
      : LLMC_SHARD_NAME.test(name)
      ? "a file named like llm.c's shards must carry its header"
      : "headerless token files must be named train.bin or val.bin";
    throw new ShardError(
      `${path}: first word ${magic}${what} is not the llm.c GPT-2 shard magic ${SHARD_MAGIC}: ` +
        rule,
    );
  }
  if (size < SHARD_HEADER_BYTES) {
    throw new ShardError(
      `${path}: llm.c header truncated (${size} of ${SHARD_HEADER_BYTES} bytes)`,
    );
  }
  const version = view.getInt32(4, true);
  if (version !== SHARD_VERSION) {
    throw new ShardError(
      `${path}: unsupported llm.c shard version ${version} (expected ${SHARD_VERSION})`,
    );
  }
  const tokens = view.getInt32(8, true);
  const expected = SHARD_HEADER_BYTES + 2 * tokens;
  if (tokens <= 0 || expected !== size) {
    throw new ShardError(
      `${path}: header says ${tokens} tokens (${expected} bytes) but the file has ${size} bytes`,
    );
  }
  return { path, format: "llmc", dataOffset: SHARD_HEADER_BYTES, tokens };
}

/** How {@link ShardReader.open} reads a shard. */
export interface ShardReadOptions {
  /** Tokens must be below this (default 50257, GPT-2's vocabulary). */
  vocab?: number;
  /** Where `vocab` came from, e.g. "the model in out/checkpoints/step_00000010.safetensors". */
  vocabFrom?: string;
  /** The file's format; by default decided by its name ({@link shardInfo}). */
  format?: ShardFormat;
}

/**
 * Random access to one shard's tokens through seek + read of only the requested window.
 * Call {@link close} (or use `using`) when done.
 */
export class ShardReader implements Disposable {
  readonly info: ShardInfo;
  readonly vocab: number;
  readonly vocabFrom: string | undefined;
  #file: Deno.FsFile;

  private constructor(info: ShardInfo, options: ShardReadOptions, file: Deno.FsFile) {
    this.info = info;
    this.vocab = options.vocab ?? GPT2_VOCAB;
    this.vocabFrom = options.vocabFrom;
    this.#file = file;
  }

  /** Open and validate `path`; tokens must be below `vocab` (checked on every read). */
  static open(path: string, options: ShardReadOptions = {}): ShardReader {
    const info = shardInfo(path, options.format);
    return new ShardReader(info, options, Deno.openSync(path));
  }

  /** Number of tokens in the shard. */
  get tokens(): number {
    return this.info.tokens;
  }

  /**
   * Tokens [start, start + out.length) into `out` (u32, as the GPU takes them).
   * Throws a {@link ShardError} naming the file and position for a token >= vocab.
   */
  read(start: number, out: Uint32Array): Uint32Array {
    const count = out.length;
    if (start < 0 || start + count > this.tokens) {
      throw new RangeError(
        `${this.info.path}: tokens [${start}, ${start + count}) outside [0, ${this.tokens})`,
      );
    }
    const bytes = new Uint8Array(2 * count);
    this.#file.seekSync(this.info.dataOffset + 2 * start, Deno.SeekMode.Start);
    readFully(this.#file, bytes, 0, this.info.path);
    // Decode LE explicitly (DataView) so the result does not depend on the host's endianness.
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < count; i++) {
      const token = view.getUint16(2 * i, true);
      if (token >= this.vocab) throw this.#outOfVocab(token, start + i);
      out[i] = token;
    }
    return out;
  }

  /** Close the file. */
  close(): void {
    this.#file.close();
  }

  #outOfVocab(token: number, position: number): ShardError {
    const where = `${this.info.path}: token ${token} at position ${position}`;
    if (!this.vocabFrom) return new ShardError(`${where} is >= vocab size ${this.vocab}`);
    return new ShardError(
      `${where} is outside the vocabulary of ${this.vocabFrom} (${this.vocab} tokens): the ` +
        "model's vocabulary is smaller than this data's tokens; use data tokenized for this " +
        "model, or a model for this data's tokenizer",
    );
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Fill `buf` from the file's current position; a short file is a {@link ShardError}. */
function readFully(file: Deno.FsFile, buf: Uint8Array, offset: number, path: string): void {
  while (offset < buf.length) {
    const n = file.readSync(buf.subarray(offset));
    if (n === null || n === 0) {
      throw new ShardError(`${path}: unexpected end of file (file changed while reading?)`);
    }
    offset += n;
  }
}

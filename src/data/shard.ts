/**
 * Token shard files: the llm.c format and nanoGPT's headerless format.
 *
 * llm.c shard: 256 little-endian int32 header words ([0] = 20240520 magic, [1] = 1 version,
 * [2] = token count), then `count` uint16 LE tokens. nanoGPT / repgpt `train.bin` / `val.bin`:
 * uint16 LE tokens only, no header (recognised by the absence of the magic).
 *
 * {@link ShardReader} validates the header against the file size when it opens a file and checks
 * every token it returns against the vocabulary, so a bad file is an error naming the file and
 * the reason, never a silent wrong read.
 */

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
  /** "llmc": 1024-byte header; "raw": headerless uint16 (nanoGPT `train.bin`). */
  format: "llmc" | "raw";
  /** Byte offset of token 0. */
  dataOffset: number;
  /** Number of tokens. */
  tokens: number;
}

/**
 * Read and check a shard's header against its size. An llm.c file is one whose first word is
 * the magic; anything else is taken as headerless uint16 tokens. (A headerless GPT-2 file cannot
 * start with the magic's bytes: its first token would be 0xD5C8 = 54728 >= 50257.)
 */
export function shardInfo(path: string): ShardInfo {
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
  if (magic !== SHARD_MAGIC) {
    if (size % 2 !== 0) {
      throw new ShardError(
        `${path}: no llm.c header (first word ${magic}, magic is ${SHARD_MAGIC}) and an odd ` +
          `byte length ${size}: not a headerless uint16 token file either`,
      );
    }
    return { path, format: "raw", dataOffset: 0, tokens: size / 2 };
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

/**
 * Random access to one shard's tokens through seek + read of only the requested window.
 * Call {@link close} (or use `using`) when done.
 */
export class ShardReader implements Disposable {
  readonly info: ShardInfo;
  readonly vocab: number;
  #file: Deno.FsFile;

  private constructor(info: ShardInfo, vocab: number, file: Deno.FsFile) {
    this.info = info;
    this.vocab = vocab;
    this.#file = file;
  }

  /** Open and validate `path`; tokens must be below `vocab` (checked on every read). */
  static open(path: string, vocab = GPT2_VOCAB): ShardReader {
    const info = shardInfo(path);
    return new ShardReader(info, vocab, Deno.openSync(path));
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
      if (token >= this.vocab) {
        throw new ShardError(
          `${this.info.path}: token ${token} at position ${
            start + i
          } is >= vocab size ${this.vocab}`,
        );
      }
      out[i] = token;
    }
    return out;
  }

  /** Close the file. */
  close(): void {
    this.#file.close();
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

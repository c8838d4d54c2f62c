/**
 * A run's checkpoints (`OUT/checkpoints`, format in src/io/checkpoint.ts): saving them in the
 * background, rotation (the newest `keep`), and the last good one, which a diverged run names.
 *
 * Every rank calls {@link Checkpointer.save}, because the ranks first check that they hold
 * identical, finite parameters; then rank 0 alone writes. It holds one flat buffer at a time:
 * params (already read back for the check), then AdamW m, then v, each read back from the GPU
 * when its turn comes in the file and dropped once written. Training goes on once v is read
 * back, so the file holds one step's state; the rest of the write (v's bytes, fsync, rename,
 * rotation) lands in the background, and the next save or {@link Checkpointer.flush} waits
 * for it and reports its failure.
 */
import { saveCheckpoint, type TensorSlot } from "../io/checkpoint.ts";
import { checkRanksAgree } from "../distributed/agree.ts";
import type { Communicator } from "../distributed/communicator.ts";

/** The model as the checkpointer needs it (src/model/gpt2.ts's GPT2 fits). */
export interface CheckpointedModel {
  readonly layout: { readonly tensors: readonly TensorSlot[] };
  download(flat: "params" | "m" | "v"): Promise<Float32Array>;
}

export interface CheckpointerOptions {
  /** The checkpoint folder, `OUT/checkpoints`. */
  dir: string;
  comm: Communicator;
  /** Whether this rank writes (rank 0); every rank takes part in the checks. */
  writes: boolean;
  model: CheckpointedModel;
  /** The rest of a checkpoint, as of the moment of the save (JSON-able). */
  metadata: () => {
    config: unknown;
    modelConfig: unknown;
    loaderState: unknown;
    rngState: unknown;
    trainerState?: unknown;
  };
  /** The checkpoint the run started from, the last good one until a save lands. */
  lastGood: string | null;
  /** Checkpoints kept, the newest included (default 2). */
  keep?: number;
}

/** Saves a run's checkpoints; see the module doc. */
export class Checkpointer {
  #writing: Promise<void> = Promise.resolve();
  #lastGood: string | null;

  constructor(private readonly o: CheckpointerOptions) {
    this.#lastGood = o.lastGood;
  }

  /** The newest checkpoint known written (on rank 0; elsewhere the one the run started from). */
  get lastGood(): string | null {
    return this.#lastGood;
  }

  /**
   * Checkpoint the state after `step` updates. Every rank must call it. Returns once the state
   * is read back (rank 0's file write goes on in the background). Throws on every rank when
   * the ranks' parameters differ or hold NaN or Inf, and when the previous write failed.
   */
  async save(step: number): Promise<void> {
    await this.flush();
    await this.#write(step, await this.#checkedParams(step));
  }

  /** Wait for the write in flight; throws if it failed. */
  async flush(): Promise<void> {
    await this.#writing;
  }

  /** Stop a diverged run, naming the last good checkpoint once the write in flight has landed. */
  async diverged(what: string): Promise<never> {
    await this.#writing.catch(() => {}); // a failed write leaves the previous one the last good
    const last = !this.o.writes
      ? "Rank 0 names the last good checkpoint."
      : this.#lastGood
      ? `The last good checkpoint is ${this.#lastGood}.`
      : "No checkpoint was written.";
    throw new Error(`${what} ${last}`);
  }

  async #checkedParams(step: number): Promise<Float32Array> {
    const params = await this.o.model.download("params");
    await checkRanksAgree(this.o.comm, params, `the parameters after step ${step}`);
    if (!params.every(Number.isFinite)) {
      await this.diverged(`step ${step}: the parameters hold NaN or Inf; not saving them.`);
    }
    return params;
  }

  /** Start rank 0's write; resolves once m and v are read back (or the write failed). */
  #write(step: number, params: Float32Array): Promise<void> {
    if (!this.o.writes) return Promise.resolve();
    const { model } = this.o;
    let held: Float32Array | null = params; // handed to the writer once, then dropped here
    let readBack!: () => void;
    const stateTaken = new Promise<void>((resolve) => (readBack = resolve));
    const written = saveCheckpoint(this.o.dir, {
      step,
      layout: model.layout.tensors,
      params: () => {
        const flat = held!;
        held = null;
        return flat;
      },
      m: () => model.download("m"),
      v: async () => {
        const v = await model.download("v");
        readBack();
        return v;
      },
      ...this.o.metadata(),
      keep: this.o.keep,
    });
    this.#writing = written.then((path) => void (this.#lastGood = path));
    this.#writing.catch(() => {}); // reported by the next save or flush
    return Promise.race([stateTaken, this.#writing]);
  }
}

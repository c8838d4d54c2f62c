/**
 * HellaSwag accuracy of a model, scored as llm.c's dev/data/hellaswag.py: each ending's loss is
 * the cross-entropy of its own tokens, each predicted from every token before it; `acc` picks the
 * ending with the lowest summed loss, `acc_norm` the lowest mean loss per token.
 *
 * The candidate rows of all examples are packed into the model's (B, T) batches, B rows at a
 * time whatever the example boundaries, each row padded at its end (causal attention: padding
 * after a row's tokens never changes their losses). One forward and one readback per batch.
 */
import type { GPT2 } from "../model/gpt2.ts";
import {
  type HellaSwagRows,
  hellaswagRows,
  type HellaSwagTokens,
  readHellaSwag,
  tokenizeHellaSwag,
} from "../data/hellaswag.ts";
import { Tokenizer } from "../tokenizer/tokenizer.ts";
import type { Communicator } from "../distributed/communicator.ts";

/** One example's scores. */
export interface HellaSwagScore {
  /** Summed and mean cross-entropy of each ending's tokens. */
  sums: number[];
  means: number[];
  pred: number;
  predNorm: number;
}

/** The benchmark's result. */
export interface HellaSwagResult {
  acc: number;
  accNorm: number;
  /** Examples predicted right by summed and by mean loss. */
  correct: number;
  correctNorm: number;
  examples: number;
  /** Examples with a row cut from the left to fit the model's T. */
  cut: number;
  scores: HellaSwagScore[];
}

/** Called after each batch with the examples fully scored so far and the running acc_norm. */
export type HellaSwagProgress = (done: number, accNorm: number) => void;

/** Score `examples` with `model` (any B, T >= 2; rows longer than T are cut from the left). */
export async function scoreHellaSwag(
  model: GPT2,
  examples: readonly HellaSwagTokens[],
  onProgress?: HellaSwagProgress,
): Promise<HellaSwagResult> {
  const { B, T } = model;
  if (T < 2) {
    throw new RangeError(`HellaSwag needs a context of at least 2 tokens, the model has ${T}`);
  }
  // The row's tokens are the inputs and, shifted by one, the targets: T + 1 tokens fit.
  const prepared: HellaSwagRows[] = examples.map((ex) => hellaswagRows(ex, T + 1));
  const losses = prepared.map((p) => p.rows.map(() => ({ sum: 0, count: 0 })));
  const queue = prepared.flatMap((p, e) => p.rows.map((_, r) => ({ e, r })));
  const inputs = new Uint32Array(B * T), targets = new Uint32Array(B * T);
  const scores: HellaSwagScore[] = [];
  let correct = 0, correctNorm = 0;
  for (let start = 0; start < queue.length; start += B) {
    const batch = queue.slice(start, start + B);
    inputs.fill(0);
    targets.fill(0);
    batch.forEach(({ e, r }, b) => {
      const row = prepared[e].rows[r];
      inputs.set(row.subarray(0, row.length - 1), b * T);
      targets.set(row.subarray(1), b * T);
    });
    model.uploadBatch(inputs, targets);
    model.evalStep();
    const tokenLosses = await model.readTokenLosses();
    batch.forEach(({ e, r }, b) => {
      const row = prepared[e].rows[r], n = prepared[e].endingTokens[r];
      const last = b * T + row.length - 1; // one past the row's last target
      let sum = 0;
      for (let i = last - n; i < last; i++) sum += tokenLosses[i];
      losses[e][r] = { sum, count: n };
    });
    // Examples whose last row is in this batch are complete.
    const lastExample = batch.at(-1)!.r === 3 ? batch.at(-1)!.e : batch.at(-1)!.e - 1;
    while (scores.length <= lastExample) {
      const e = scores.length;
      const sums = losses[e].map((l) => l.sum);
      const means = losses[e].map((l) => l.sum / l.count);
      const score = { sums, means, pred: argmin(sums), predNorm: argmin(means) };
      correct += Number(score.pred === examples[e].label);
      correctNorm += Number(score.predNorm === examples[e].label);
      scores.push(score);
    }
    onProgress?.(scores.length, correctNorm / Math.max(1, scores.length));
  }
  return {
    acc: correct / examples.length,
    accNorm: correctNorm / examples.length,
    correct,
    correctNorm,
    examples: examples.length,
    cut: prepared.filter((p) => p.cut).length,
    scores,
  };
}

/**
 * HellaSwag during training: at each eval every rank scores its share of the examples (every
 * W-th, from its rank) with the training model, and the counts are summed over ranks.
 */
export class HellaSwagEval {
  private constructor(
    /** Tokenized once at open, scored at every eval. */
    readonly examples: readonly HellaSwagTokens[],
    readonly comm: Communicator,
  ) {}

  /** Read and tokenize `file` (at most `limit` examples) for a run of `comm`'s ranks. */
  static async open(
    file: string,
    { limit, vocabSize, comm }: { limit: number | null; vocabSize: number; comm: Communicator },
  ): Promise<HellaSwagEval> {
    const [examples, tok] = await Promise.all([
      readHellaSwag(file, limit ?? Infinity),
      Tokenizer.gpt2(),
    ]);
    if (vocabSize <= tok.eot) {
      throw new Error(
        `--hellaswag ${file}: the model's vocabulary (${vocabSize}) is not GPT-2's (${
          tok.eot + 1
        })`,
      );
    }
    return new HellaSwagEval(tokenizeHellaSwag(tok, examples), comm);
  }

  /** acc and acc_norm of `model` over all examples; every rank must call it. */
  async score(model: GPT2): Promise<{ acc: number; accNorm: number; examples: number }> {
    const { rank, worldSize } = this.comm;
    const mine = this.examples.filter((_, i) => i % worldSize === rank);
    const r = mine.length > 0 ? await scoreHellaSwag(model, mine) : { correct: 0, correctNorm: 0 };
    const counts = new Float32Array([r.correct, r.correctNorm]);
    await this.comm.allReduceMean(counts); // exact integers: the mean times W, rounded
    const [correct, correctNorm] = Array.from(counts, (c) => Math.round(c * worldSize));
    const n = this.examples.length;
    return { acc: correct / n, accNorm: correctNorm / n, examples: n };
  }
}

/** Index of the smallest value (the first on ties, as numpy's argmin). */
function argmin(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] < values[best]) best = i;
  return best;
}

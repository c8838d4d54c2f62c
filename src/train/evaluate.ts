/** Validation loss: the mean loss of a model over an eval loader's batches. */
import type { GPT2 } from "../model/gpt2.ts";
import type { EvalLoader } from "../data/loader.ts";

/** The mean loss of `model` over `loader`'s batches (one readback per batch). */
export async function evaluate(model: GPT2, loader: EvalLoader): Promise<number> {
  let sum = 0;
  for (const batch of loader) {
    model.uploadBatch(batch.inputs, batch.targets);
    model.evalStep();
    sum += await model.readLoss();
  }
  return sum / loader.count;
}

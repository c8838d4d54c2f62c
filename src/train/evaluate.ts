/** Validation loss: the mean loss of a model over an eval loader's batches. */
import type { GPT2 } from "../model/gpt2.ts";
import type { EvalLoader } from "../data/loader.ts";
import type { Communicator } from "../distributed/communicator.ts";

/**
 * The mean loss of `model` over `loader`'s batches (one readback per batch); with `comm`, the
 * mean over all ranks' batches, so every rank must call it.
 */
export async function evaluate(
  model: GPT2,
  loader: EvalLoader,
  comm?: Communicator,
): Promise<number> {
  let sum = 0;
  for (const batch of loader) {
    model.uploadBatch(batch.inputs, batch.targets);
    model.evalStep();
    sum += await model.readLoss();
  }
  if (!comm) return sum / loader.count;
  const loss = new Float32Array([sum / loader.count]);
  await comm.allReduceMean(loss);
  return loss[0];
}

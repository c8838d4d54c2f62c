/**
 * The run's data directory: used as given, or, for the default `data/wordnet`, prepared from
 * the embedded WordNet corpus on first use (rank 0 prepares, the others wait at a barrier).
 */
import type { Communicator } from "../distributed/communicator.ts";
import { formatSummary, prepare, WORDNET_DIR, wordnetOptions } from "../data/prepare.ts";
import { listSplit } from "../data/splits.ts";
import { shardInfo } from "../data/shard.ts";

/** Returns `dir` once it holds train and val splits. */
export async function ensureData(dir: string, comm: Communicator): Promise<string> {
  const ready = () => {
    try {
      listSplit(dir, "train");
      listSplit(dir, "val");
      return true;
    } catch {
      return false;
    }
  };
  if (!ready() && dir === WORDNET_DIR) {
    if (comm.rank === 0) {
      console.log(`${dir} is empty: preparing the WordNet corpus (deno task prepare)`);
      console.log(formatSummary(await prepare(wordnetOptions(dir))));
    }
    await comm.barrier();
  }
  // Throws naming the directory and the missing split.
  listSplit(dir, "train");
  listSplit(dir, "val");
  return dir;
}

/**
 * The eval batches of B*T tokens that the val split can give, at most `wanted`. A small val
 * split (WordNet's 237k tokens under the seed recipe's 100 x 16 x 1024) is evaluated whole,
 * with a warning, rather than failing the run.
 */
export function evalStepsThatFit(dir: string, tokensPerBatch: number, wanted: number): number {
  const files = listSplit(dir, "val");
  const tokens = files.reduce((sum, f) => sum + shardInfo(f).tokens, 0);
  const fit = Math.floor((tokens - 1) / tokensPerBatch);
  if (fit < 1) {
    throw new Error(
      `data dir ${dir}: the val split has ${tokens} tokens, fewer than one eval batch of ` +
        `${tokensPerBatch} + 1 (use a smaller --batch-size/--seq-len or more --val-docs)`,
    );
  }
  if (fit < wanted) {
    console.warn(
      `warning: the val split of ${dir} holds ${fit} batches of ${tokensPerBatch} tokens; ` +
        `evaluating on ${fit} instead of --eval-steps ${wanted}`,
    );
  }
  return Math.min(fit, wanted);
}

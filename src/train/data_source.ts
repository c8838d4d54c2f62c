/**
 * The run's data directory: used as given, or, for the default `data/wordnet`, prepared from
 * the embedded WordNet corpus on first use (rank 0 prepares, the others wait at a barrier).
 */
import type { Communicator } from "../dist/communicator.ts";
import { prepareMain, WORDNET_DIR } from "../data/prepare.ts";
import { listSplit } from "../data/splits.ts";

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
      await prepareMain([]);
    }
    await comm.barrier();
  }
  // Throws naming the directory and the missing split.
  listSplit(dir, "train");
  listSplit(dir, "val");
  return dir;
}

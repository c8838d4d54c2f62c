/**
 * A data directory's splits: llm.c-style `NAME_train_NNNNNN.bin` / `NAME_val_NNNNNN.bin`
 * shards (sorted by name), or nanoGPT's single `train.bin` / `val.bin`.
 */
import { join } from "node:path";
import { LLMC_SHARD_NAME as SHARD_NAME } from "./shard.ts";

/** Which split. */
export type Split = "train" | "val";

/**
 * The files of `split` in `dir`, in read order. Prefers llm.c-style shards; falls back to
 * `train.bin` / `val.bin`. Throws naming the directory when it has neither, or when shards of
 * several dataset names are mixed (ambiguous order).
 */
export function listSplit(dir: string, split: Split): string[] {
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)].filter((e) => e.isFile || e.isSymlink).map((e) => e.name);
  } catch (e) {
    throw new Error(`data dir ${dir}: cannot list: ${(e as Error).message}`);
  }
  const shards = names.filter((n) => SHARD_NAME.exec(n)?.[2] === split).sort();
  if (shards.length > 0) {
    const datasets = new Set(shards.map((n) => SHARD_NAME.exec(n)![1]));
    if (datasets.size > 1) {
      throw new Error(
        `data dir ${dir}: ${split} shards of several datasets (${[...datasets].join(", ")}); ` +
          `keep one per directory`,
      );
    }
    return shards.map((n) => join(dir, n));
  }
  if (names.includes(`${split}.bin`)) return [join(dir, `${split}.bin`)];
  throw new Error(
    `data dir ${dir}: no ${split} split (expected NAME_${split}_NNNNNN.bin shards or ` +
      `${split}.bin); run \`deno task prepare --out ${dir}\` first`,
  );
}

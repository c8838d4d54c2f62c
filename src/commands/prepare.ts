/**
 * `deno task prepare [INPUT...] --out DIR`: tokenize text into llm.c shards (see
 * src/data/prepare.ts). With no INPUT it prepares the WordNet default corpus into `data/wordnet`.
 */
import { basename } from "node:path";
import { formatHelp, parseFlags, UsageError } from "./flags.ts";
import {
  DEFAULT_SHARD_TOKENS,
  DEFAULT_VAL_DOCS,
  formatSummary,
  prepare,
  type PrepareSummary,
  WORDNET_DIR,
} from "../data/prepare.ts";
import { MAX_SHARD_TOKENS } from "../data/shard.ts";
import { WORDNET_NAME, WORDNET_VAL_DOCS } from "../data/wordnet.ts";

/** prepare's flags (`repgpt prepare` uses the same). */
export const PREPARE_FLAGS = {
  out: {
    type: "string",
    help: `output folder (required with INPUT; ${WORDNET_DIR} for the default corpus)`,
  },
  name: {
    type: "string",
    help: `dataset name, the shard prefix (default: the --out folder's name; ${WORDNET_NAME})`,
  },
  "val-docs": {
    type: "integer",
    min: 0,
    help: `first N documents form the val split (default ${DEFAULT_VAL_DOCS}; ` +
      `${WORDNET_VAL_DOCS} for WordNet)`,
  },
  "shard-tokens": {
    type: "integer",
    min: 1,
    max: MAX_SHARD_TOKENS,
    default: DEFAULT_SHARD_TOKENS,
    help: "tokens per train shard",
  },
  workers: {
    type: "integer",
    min: 1,
    default: navigator.hardwareConcurrency,
    help: "tokenizer Workers",
  },
} as const;

const USAGE = "deno task prepare [INPUT...] [flags]\n\n" +
  'INPUT: .txt (one document per file), .jsonl (field "text"), .parquet (column "text"),\n' +
  "or folders of them (recursive, in name order). No INPUT: the WordNet 3.1 corpus.";

/** The command: parse `args`, prepare, print the summary. Throws {@link UsageError} on bad flags. */
export async function prepareMain(args: string[]): Promise<PrepareSummary | null> {
  const { values, positionals, help } = parseFlags(args, PREPARE_FLAGS, { positionals: true });
  if (help) {
    console.log(formatHelp(USAGE, PREPARE_FLAGS));
    return null;
  }
  const wordnet = positionals.length === 0;
  if (!wordnet && values.out === undefined) {
    throw new UsageError("--out is required when INPUT files are given");
  }
  const out = values.out ?? WORDNET_DIR;
  const summary = await prepare({
    inputs: positionals,
    out,
    name: values.name ?? (wordnet ? WORDNET_NAME : basename(out)),
    valDocs: values["val-docs"] ?? (wordnet ? WORDNET_VAL_DOCS : DEFAULT_VAL_DOCS),
    shardTokens: values["shard-tokens"],
    workers: values.workers,
  });
  console.log(formatSummary(summary));
  return summary;
}

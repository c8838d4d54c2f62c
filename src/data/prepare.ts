/**
 * Tokenize text into llm.c shards (the library behind `deno task prepare`).
 *
 * The main thread reads the inputs and cuts them into jobs ({@link ./inputs.ts}); a pool of
 * Workers decodes and tokenizes them with the WASM GPT-2 tokenizer; the main thread writes the
 * results in job order ({@link ./shard_writer.ts}). At most 2 jobs per Worker are in flight, so
 * memory stays bounded whatever the corpus size, and the output is byte-identical for any
 * number of Workers. With no INPUT it prepares the WordNet default corpus into `data/wordnet`.
 *
 * The shards are written into a staging folder beside `out` and swapped in only once all are
 * complete (./staged_dir.ts): a failed or killed prepare leaves an existing dataset as it was.
 */
import { basename, join } from "node:path";
import { formatCount, formatDuration, Progress } from "../log/progress.ts";
import { expandInputs, fileJobs, type Job, textJobs } from "./inputs.ts";
import { ShardSetWriter, type WrittenShards } from "./shard_writer.ts";
import { discardStaged, stageDir, swapIn } from "./staged_dir.ts";
import { LLMC_SHARD_NAME } from "./shard.ts";
import { type Tokenized, TokenizePool } from "./_tokenize_pool.ts";
import { WORDNET_NAME, WORDNET_VAL_DOCS, wordnetDocuments } from "./wordnet.ts";

/** Default validation documents for user inputs (about nanoGPT's 0.05% of OpenWebText). */
export const DEFAULT_VAL_DOCS = 5_000;
/** Train shard size, as llm.c's fineweb.py. */
export const DEFAULT_SHARD_TOKENS = 100_000_000;
/** Where the default corpus goes. */
export const WORDNET_DIR = "data/wordnet";

/** What {@link prepare} does. */
export interface PrepareOptions {
  /** Input files and folders; empty for the WordNet corpus. */
  inputs: string[];
  out: string;
  name: string;
  valDocs: number;
  shardTokens: number;
  workers: number;
  /** Show a progress bar / periodic lines on stderr (default true). */
  progress?: boolean;
}

/** What {@link prepare} did. */
export interface PrepareSummary extends WrittenShards {
  /** Shards of an earlier run of the same name that the new dataset has no counterpart of. */
  removed: string[];
  tokens: number;
  inputBytes: number;
  seconds: number;
}

/** The options that prepare the embedded WordNet corpus into `out` (the default job's data). */
export function wordnetOptions(out = WORDNET_DIR): PrepareOptions {
  return {
    inputs: [],
    out,
    name: WORDNET_NAME,
    valDocs: WORDNET_VAL_DOCS,
    shardTokens: DEFAULT_SHARD_TOKENS,
    workers: navigator.hardwareConcurrency,
  };
}

/** Tokenize the inputs into shards in `out`, replacing the dataset there only on success. */
export async function prepare(options: PrepareOptions): Promise<PrepareSummary> {
  const { jobs, inputBytes } = await openInputs(options.inputs);
  const staged = await stageDir(options.out);
  const started = performance.now();
  let written: WrittenShards & { inputBytes: number };
  let removed: string[];
  try {
    written = await tokenizeInto(staged.staging, jobs, inputBytes, options);
    // The old dataset: its shards, and temporary files of a prepare killed mid-shard.
    const ours = (name: string) =>
      LLMC_SHARD_NAME.exec(name.replace(/\.tmp-\d+$/, ""))?.[1] === options.name;
    removed = (await swapIn(staged, ours)).filter((name) => LLMC_SHARD_NAME.test(name));
  } catch (e) {
    await discardStaged(staged);
    throw e;
  }
  const inOut = (f: string) => join(options.out, basename(f));
  return {
    ...written,
    files: written.files.map(inOut),
    removed: removed.map(inOut),
    tokens: written.valTokens + written.trainTokens,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Tokenize `jobs` in the Worker pool and write their shards into `dir`, in job order. */
async function tokenizeInto(
  dir: string,
  jobs: AsyncIterable<Job> | Iterable<Job>,
  inputBytes: number,
  options: PrepareOptions,
): Promise<WrittenShards & { inputBytes: number }> {
  const source = options.inputs.length > 0 ? options.inputs.join(", ") : "the WordNet corpus";
  const writer = new ShardSetWriter(dir, options.name, { ...options, source });
  const pool = new TokenizePool(options.workers);
  const bar = options.progress === false
    ? null
    : new Progress({ label: "prepare", total: inputBytes, unit: "B" });
  const maxInFlight = 2 * options.workers;
  const inFlight: { result: Promise<Tokenized>; bytes: number }[] = [];
  let bytesDone = 0, docs = 0, tokens = 0;
  const writeOldest = async () => {
    const { result, bytes } = inFlight.shift()!;
    const t = await result;
    await writer.add(t.tokens, t.docTokens);
    bytesDone += bytes;
    docs += t.docTokens.length;
    tokens += t.tokens.length;
    bar?.update(bytesDone, { docs, tokens });
  };
  let written: WrittenShards;
  try {
    for await (const job of jobs) {
      const bytes = job.bytes;
      const result = pool.run(job);
      result.catch(() => {}); // rejections are handled when awaited in order
      inFlight.push({ result, bytes });
      if (inFlight.length >= maxInFlight) await writeOldest();
    }
    while (inFlight.length > 0) await writeOldest();
    written = await writer.finish();
  } catch (e) {
    await writer.abort();
    throw e;
  } finally {
    pool.close();
  }
  bar?.finish();
  return { ...written, inputBytes: bytesDone };
}

async function openInputs(
  inputs: readonly string[],
): Promise<{ jobs: AsyncIterable<Job> | Iterable<Job>; inputBytes: number }> {
  if (inputs.length === 0) {
    const jobs = [...textJobs(await wordnetDocuments())];
    return { jobs, inputBytes: jobs.reduce((sum, j) => sum + j.bytes, 0) };
  }
  const files = await expandInputs(inputs);
  let inputBytes = 0;
  for (const f of files) inputBytes += (await Deno.stat(f)).size;
  return { jobs: fileJobs(files), inputBytes };
}

/** The closing report: counts, files and throughput. */
export function formatSummary(s: PrepareSummary): string {
  const secs = Math.max(s.seconds, 1e-9);
  return [
    `prepared ${s.docs} documents (${s.valDocs} val) = ${s.tokens} tokens ` +
    `(val ${s.valTokens}, train ${s.trainTokens}) in ${s.files.length} shards:`,
    ...s.files.map((f) => `  ${f}`),
    ...s.removed.map((f) => `  removed stale ${f}`),
    `${formatCount(s.inputBytes, "B")} in ${formatDuration(s.seconds)} (${
      s.seconds.toFixed(2)
    } s): ` +
    `${formatCount(s.inputBytes / secs, "B")}/s, ${formatCount(s.docs / secs, "docs")}/s, ` +
    `${formatCount(s.tokens / secs, "tokens")}/s`,
  ].join("\n");
}

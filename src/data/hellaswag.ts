/**
 * HellaSwag (Zellers et al. 2019), the standard GPT-2 benchmark: the validation set's published
 * JSON-lines file (10,042 examples), one object per line with `ctx` (string), `endings` (4
 * strings) and `label` (0-3); other fields are ignored. Not on npm: users bring the file.
 *
 * Each example becomes four token rows as llm.c's dev/data/hellaswag.py builds them:
 * encode(ctx) followed by encode(" " + ending). A row longer than the model's context keeps its
 * last `maxLen` tokens (the context's start is cut), which is counted and reported.
 */
import type { Tokenizer } from "../tokenizer/tokenizer.ts";

/** One example, with the line it came from (1-based) for error messages. */
export interface HellaSwagExample {
  ctx: string;
  endings: string[];
  label: number;
  line: number;
}

/** The 4 candidate rows of one example, ready for the model. */
export interface HellaSwagRows {
  /** ctx + ending tokens, at most `maxLen` each. */
  rows: Uint32Array[];
  /** How many of each row's last tokens are the ending's (and are scored). */
  endingTokens: number[];
  /** Whether a row was cut from the left to fit `maxLen`. */
  cut: boolean;
}

/** Read the examples of `path` (at most `limit`). Errors name `path:line` and the reason. */
export async function readHellaSwag(path: string, limit = Infinity): Promise<HellaSwagExample[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`${path}: cannot read the HellaSwag file: ${(e as Error).message}`);
  }
  const examples: HellaSwagExample[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length && examples.length < limit; i++) {
    if (lines[i].trim() === "") continue;
    examples.push(parseExample(lines[i], `${path}:${i + 1}`, i + 1));
  }
  if (examples.length === 0) throw new Error(`${path}: no HellaSwag examples (the file is empty)`);
  return examples;
}

function parseExample(line: string, where: string, lineNumber: number): HellaSwagExample {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch (e) {
    throw new Error(`${where}: not a JSON object: ${(e as Error).message}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new Error(`${where}: not a JSON object`);
  }
  const { ctx, endings, label } = json as Record<string, unknown>;
  if (typeof ctx !== "string") throw new Error(`${where}: "ctx" must be a string`);
  if (
    !Array.isArray(endings) || endings.length !== 4 || endings.some((e) => typeof e !== "string")
  ) {
    const got = Array.isArray(endings) ? `${endings.length} entries` : JSON.stringify(endings);
    throw new Error(`${where}: "endings" must be 4 strings, got ${got}`);
  }
  if (typeof label !== "number" || !Number.isInteger(label) || label < 0 || label > 3) {
    throw new Error(`${where}: "label" must be 0, 1, 2 or 3, got ${JSON.stringify(label)}`);
  }
  return { ctx, endings, label, line: lineNumber };
}

/** An example's tokens: encode(ctx), and encode(" " + ending) for each ending. */
export interface HellaSwagTokens {
  ctx: Uint32Array;
  endings: Uint32Array[];
  label: number;
}

/** Tokenize `examples` once (scoring at every eval reuses the tokens). */
export function tokenizeHellaSwag(
  tok: Tokenizer,
  examples: readonly HellaSwagExample[],
): HellaSwagTokens[] {
  return examples.map((ex) => ({
    ctx: tok.encode(ex.ctx),
    endings: ex.endings.map((ending) => tok.encode(" " + ending)),
    label: ex.label,
  }));
}

/** The four rows of `example`, each cut to its last `maxLen` tokens. */
export function hellaswagRows(example: HellaSwagTokens, maxLen: number): HellaSwagRows {
  const { ctx } = example;
  let cut = false;
  const rows: Uint32Array[] = [], endingTokens: number[] = [];
  for (const end of example.endings) {
    const full = new Uint32Array(ctx.length + end.length);
    full.set(ctx);
    full.set(end, ctx.length);
    const row = full.length > maxLen ? full.subarray(full.length - maxLen) : full;
    cut ||= row !== full;
    rows.push(row);
    // Every ending token is predicted from the tokens before it: the first row token is not.
    endingTokens.push(Math.min(end.length, row.length - 1));
  }
  return { rows, endingTokens, cut };
}

/** Tokens in the longest candidate row of `examples` (context + ending, uncut). */
export function longestHellaSwagRow(examples: readonly HellaSwagTokens[]): number {
  return Math.max(0, ...examples.flatMap((ex) => ex.endings.map((e) => ex.ctx.length + e.length)));
}

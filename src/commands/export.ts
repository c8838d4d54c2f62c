/**
 * `deno task export --from PATH --to OUT [--format hf|llmc]`: a model out of repgpt.
 *
 * - `hf` (default): OUT is a folder with `config.json` + `model.safetensors` in GPT-2's Hugging
 *   Face layout (src/model/hf.ts: Conv1D matrices, vocab 50,257, zero biases for a bias-free
 *   model) and the tokenizer's `vocab.json` + `merges.txt`, so `transformers` opens it whole.
 * - `llmc`: OUT is llm.c's fp32 model file (src/model/llmc.ts), which its train_gpt2 loads.
 *
 * The output is written beside OUT under a temporary name and renamed into place, so a failed
 * export leaves nothing half-written; an existing OUT is replaced only with `--force`.
 */
import { basename, dirname, join } from "node:path";
import { formatHelp, parseFlags, UsageError } from "./flags.ts";
import { saveHf } from "../model/hf.ts";
import { llmcGeluWarning, saveLlmc } from "../model/llmc.ts";
import { loadWeights } from "../model/weights.ts";
import { gpt2Files } from "../tokenizer/tokenizer.ts";

/** `deno task export` flags. */
export const EXPORT_FLAGS = {
  from: {
    type: "string",
    help: "model: a run's out dir, a checkpoint, a Hugging Face dir or an llm.c model file",
  },
  to: { type: "string", help: "output: a folder for hf, a file for llmc" },
  format: {
    type: "string",
    default: "hf",
    choices: ["hf", "llmc"],
    help: "hf (config.json, model.safetensors, tokenizer files) or llmc (llm.c's model .bin)",
  },
  force: { type: "boolean", default: false, help: "replace an existing --to" },
} as const;

const USAGE = "deno task export --from PATH --to OUT [--format hf|llmc] [--force]";

/** Entry point of `deno task export` and `repgpt export`. */
export async function exportMain(args: string[]): Promise<void> {
  const { values, help } = parseFlags(args, EXPORT_FLAGS);
  if (help) {
    console.log(formatHelp(USAGE, EXPORT_FLAGS));
    return;
  }
  const { from, to, format, force } = values;
  if (!from) throw new UsageError("--from is required");
  if (!to) throw new UsageError("--to is required");
  if (!force && await occupied(to)) {
    throw new UsageError(`--to ${to}: already exists and is not empty (--force replaces it)`);
  }
  const { config, params } = await loadWeights(from);
  const tmp = join(dirname(to), `.${basename(to)}.export-${Deno.pid}`);
  try {
    if (format === "hf") {
      await saveHf(tmp, config, params);
      const { vocab, merges } = await gpt2Files();
      await Deno.writeTextFile(join(tmp, "vocab.json"), JSON.stringify(vocab));
      await Deno.writeTextFile(join(tmp, "merges.txt"), merges);
    } else {
      await saveLlmc(tmp, config, params);
    }
    await replace(tmp, to);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw new Error(`export to ${to}: ${(e as Error).message}`);
  }
  const note = format === "llmc" ? llmcGeluWarning(config) : null;
  if (note) console.log(note);
  console.log(
    `exported ${from} (L${config.numLayers} NH${config.numHeads} C${config.channels} ` +
      `T${config.maxSeqLen}, ${config.bias ? "with" : "no"} biases, ${config.gelu} GELU) ` +
      `to ${to} as ${format}`,
  );
}

/** Whether `path` exists as a file or a non-empty folder. */
async function occupied(path: string): Promise<boolean> {
  try {
    const stat = await Deno.stat(path);
    if (!stat.isDirectory) return true;
    for await (const _ of Deno.readDir(path)) return true;
    return false;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Move `tmp` to `to`; an existing `to` is moved aside first and removed once `tmp` is in. */
async function replace(tmp: string, to: string): Promise<void> {
  const old = `${tmp}.old`;
  const hadOld = await Deno.rename(to, old).then(() => true, (e) => {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  });
  try {
    await Deno.rename(tmp, to);
  } catch (e) {
    if (hadOld) await Deno.rename(old, to);
    throw e;
  }
  if (hadOld) await Deno.remove(old, { recursive: true });
}

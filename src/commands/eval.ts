/**
 * `deno task eval`: a model's mean loss over the first N batches of a val split (`--data`), its
 * HellaSwag accuracy (`--hellaswag FILE`), or both.
 *
 * Val batch i is tokens [i*B*T, i*B*T + B*T + 1) of the val stream (all val shards concatenated
 * in name order), exactly as the trainer's eval reads it. HellaSwag is scored as llm.c's
 * hellaswag.py (src/train/hellaswag.ts). The last stdout line is JSON: `val_loss`,
 * `hellaswag_acc`, `hellaswag_acc_norm`, `hellaswag_examples`, as measured.
 */
import { formatHelp, parseFlags, UsageError } from "./flags.ts";
import { type AutotuneMode, requestGpu } from "../gpu/device.ts";
import { EvalLoader } from "../data/loader.ts";
import { listSplit } from "../data/splits.ts";
import { GPT2 } from "../model/gpt2.ts";
import type { Precision } from "../model/precision.ts";
import { PRECISION_FLAG } from "./precision_flag.ts";
import { autotuneFlag } from "./autotune_flag.ts";
import { loadWeights } from "../model/weights.ts";
import { evaluate } from "../train/evaluate.ts";
import { longestHellaSwagRow, readHellaSwag, tokenizeHellaSwag } from "../data/hellaswag.ts";
import { scoreHellaSwag } from "../train/hellaswag.ts";
import { Progress } from "../log/progress.ts";
import { Tokenizer } from "../tokenizer/tokenizer.ts";
import type { GPT2Config } from "../model/config.ts";

/** `deno task eval` flags. */
export const EVAL_FLAGS = {
  "init-from": {
    type: "string",
    help: "model: a Hugging Face dir (config.json + model.safetensors), a checkpoint file, " +
      "or a dir of checkpoints (the latest is used)",
  },
  data: { type: "string", help: "data dir with val shards (NAME_val_NNNNNN.bin or val.bin)" },
  "batch-size": { type: "integer", min: 1, default: 8, help: "sequences per batch" },
  "seq-len": {
    type: "integer",
    min: 1,
    help: "tokens per sequence (default: the model's context)",
  },
  "eval-steps": { type: "integer", min: 1, default: 20, help: "val batches to average" },
  hellaswag: {
    type: "string",
    help: "HellaSwag validation set, JSON lines (hellaswag_val.jsonl: 10,042 examples)",
  },
  "hellaswag-limit": { type: "integer", min: 1, help: "score the first N examples only" },
  precision: PRECISION_FLAG,
  autotune: autotuneFlag("cached"),
} as const;

const USAGE = "deno task eval --init-from PATH (--data DIR | --hellaswag FILE | both) [flags]";

/** Entry point of `deno task eval` and of the compiled binary's `eval` command. */
export async function evalMain(args: string[]): Promise<void> {
  const { values, help } = parseFlags(args, EVAL_FLAGS);
  if (help) {
    console.log(formatHelp(USAGE, EVAL_FLAGS));
    return;
  }
  const initFrom = values["init-from"], data = values.data, hellaswag = values.hellaswag;
  if (!initFrom) throw new UsageError("--init-from is required");
  if (!data && !hellaswag) throw new UsageError("give --data, --hellaswag or both");
  if (values["hellaswag-limit"] !== undefined && !hellaswag) {
    throw new UsageError("--hellaswag-limit needs --hellaswag");
  }
  const { config, params } = await loadWeights(initFrom);
  const T = values["seq-len"] ?? config.maxSeqLen;
  if (T > config.maxSeqLen) {
    throw new UsageError(`--seq-len: ${T} is above the model's context ${config.maxSeqLen}`);
  }
  const gpu = await requestGpu({ autotune: values.autotune as AutotuneMode });
  const withModel = async <R>(B: number, T: number, use: (m: GPT2) => Promise<R>) => {
    const model = await GPT2.create(gpu, config, {
      B,
      T,
      precision: values.precision as Precision,
    });
    try {
      model.upload("params", params);
      return await use(model);
    } finally {
      model.destroy();
    }
  };
  const result: Record<string, number> = {};
  if (data) {
    using loader = new EvalLoader(listSplit(data, "val"), {
      B: values["batch-size"],
      T,
      steps: values["eval-steps"],
      vocab: config.vocabSize,
      vocabFrom: `the model from --init-from ${initFrom}`,
    });
    result.val_loss = await withModel(values["batch-size"], T, (m) => evaluate(m, loader));
  }
  if (hellaswag) {
    Object.assign(
      result,
      await evalHellaSwag(config, withModel, hellaswag, values["hellaswag-limit"], {
        B: values["batch-size"],
        maxT: T,
      }),
    );
  }
  console.log(JSON.stringify(result));
}

/** HellaSwag with a model as long as the longest row needs (at most `maxT`). */
async function evalHellaSwag(
  config: GPT2Config,
  withModel: <R>(B: number, T: number, use: (m: GPT2) => Promise<R>) => Promise<R>,
  file: string,
  limit: number | undefined,
  { B, maxT }: { B: number; maxT: number },
): Promise<Record<string, number>> {
  const read = await readHellaSwag(file, limit);
  const tok = await Tokenizer.gpt2();
  if (config.vocabSize < tok.eot + 1) {
    throw new Error(
      `--hellaswag: the model's vocabulary (${config.vocabSize}) is not GPT-2's (${tok.eot + 1})`,
    );
  }
  const examples = tokenizeHellaSwag(tok, read);
  const T = Math.max(2, Math.min(maxT, longestHellaSwagRow(examples) - 1));
  const bar = new Progress({ label: "hellaswag", total: examples.length, unit: "ex" });
  const r = await withModel(
    B,
    T,
    (m) =>
      scoreHellaSwag(
        m,
        examples,
        (done, accNorm) => bar.update(done, {}, `acc_norm ${accNorm.toFixed(4)}`),
      ),
  );
  bar.finish();
  if (r.cut > 0) {
    console.error(
      `hellaswag: ${r.cut} of ${r.examples} examples had a row longer than the context ` +
        `${T + 1} and were cut from the left`,
    );
  }
  return { hellaswag_acc: r.acc, hellaswag_acc_norm: r.accNorm, hellaswag_examples: r.examples };
}

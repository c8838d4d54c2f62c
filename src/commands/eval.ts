/**
 * `deno task eval`: the mean loss of a model over the first N batches of a val split.
 *
 * Batch i is tokens [i*B*T, i*B*T + B*T + 1) of the val stream (all val shards concatenated
 * in name order), exactly as the trainer's eval reads it. The last stdout line is JSON:
 * `{"val_loss": x}`.
 */
import { formatHelp, parseFlags, UsageError } from "./flags.ts";
import { requestGpu } from "../gpu/device.ts";
import { EvalLoader } from "../data/loader.ts";
import { listSplit } from "../data/splits.ts";
import { GPT2 } from "../model/gpt2.ts";
import { loadWeights } from "../model/weights.ts";
import { evaluate } from "../train/evaluate.ts";

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
} as const;

const USAGE = "deno task eval --init-from DIR --data DIR [flags]";

/** Entry point of `deno task eval` and of the compiled binary's `eval` command. */
export async function evalMain(args: string[]): Promise<void> {
  const { values, help } = parseFlags(args, EVAL_FLAGS);
  if (help) {
    console.log(formatHelp(USAGE, EVAL_FLAGS));
    return;
  }
  const initFrom = values["init-from"], data = values.data;
  if (!initFrom) throw new UsageError("--init-from is required");
  if (!data) throw new UsageError("--data is required");
  const { config, params } = await loadWeights(initFrom);
  const B = values["batch-size"], T = values["seq-len"] ?? config.maxSeqLen;
  if (T > config.maxSeqLen) {
    throw new UsageError(`--seq-len: ${T} is above the model's context ${config.maxSeqLen}`);
  }
  const steps = values["eval-steps"];
  using loader = new EvalLoader(listSplit(data, "val"), {
    B,
    T,
    steps,
    vocab: config.vocabSize,
  });
  const gpu = await requestGpu();
  const model = await GPT2.create(gpu, config, { B, T });
  try {
    model.upload("params", params);
    const loss = await evaluate(model, loader);
    console.log(JSON.stringify({ val_loss: loss }));
  } finally {
    model.destroy();
  }
}

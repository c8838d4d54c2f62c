/**
 * The training run's configuration: flags as plain data, and the two recipes their defaults
 * come from. `seed` is the GPT-2 124M recipe being reproduced (../NOTES: 524,288 tokens per
 * step, lr 1e-2, wd 0.125, 2,000 warmup steps, cosine to 0 at 90,000 steps). `cpu` is the
 * default on a software adapter: a small model that visibly learns WordNet in minutes.
 * A flag given on the command line always wins over the recipe.
 */
import { type FlagSpecs, type FlagValues, UsageError } from "../commands/flags.ts";

/** Every `deno task train` flag; defaults shown in --help are the seed recipe's. */
export const TRAIN_FLAGS = {
  data: {
    type: "string",
    help:
      "data dir of llm.c shards (default data/wordnet, prepared if missing; or SM_CHANNEL_TRAIN)",
  },
  model: {
    type: "string",
    help:
      "preset: gpt2, gpt2-medium, gpt2-large, gpt2-xl, or a small one (default gpt2 on a GPU, cpu-small on a software adapter)",
  },
  "init-from": { type: "string", help: "start from a Hugging Face dir or one of our checkpoints" },
  out: {
    type: "string",
    help: "output dir: metrics.jsonl, tensorboard/, checkpoints/ (default out, or SM_MODEL_DIR)",
  },
  resume: { type: "boolean", default: false, help: "continue from the latest checkpoint in --out" },
  "move-aside": {
    type: "boolean",
    default: false,
    help: "a fresh run into an --out that holds a run first moves that run aside (never deleted)",
  },
  "max-steps": { type: "integer", min: 1, help: "optimizer steps (seed 90000)" },
  "batch-size": { type: "integer", min: 1, help: "sequences per micro-batch per rank (seed 16)" },
  "seq-len": { type: "integer", min: 1, help: "tokens per sequence (seed 1024)" },
  "total-batch-tokens": {
    type: "integer",
    min: 1,
    help: "tokens per optimizer step, all ranks (seed 524288); sets grad accumulation",
  },
  "grad-accum": {
    type: "integer",
    min: 1,
    help: "micro-steps per optimizer step (overrides --total-batch-tokens)",
  },
  lr: { type: "number", min: 0, help: "max learning rate (seed 1e-2)" },
  "min-lr": { type: "number", min: 0, help: "learning rate at the end of the cosine (seed 0)" },
  "warmup-steps": { type: "integer", min: 0, help: "linear warmup steps (seed 2000)" },
  "weight-decay": {
    type: "number",
    min: 0,
    help: "AdamW decay on tensors of 2+ dims (seed 0.125)",
  },
  beta1: { type: "number", min: 0, max: 1, default: 0.9, help: "AdamW beta1" },
  beta2: { type: "number", min: 0, max: 1, default: 0.95, help: "AdamW beta2" },
  eps: { type: "number", min: 0, default: 1e-8, help: "AdamW epsilon" },
  "grad-clip": {
    type: "number",
    min: 0,
    default: 1.0,
    help: "global gradient-norm clip (0 = off)",
  },
  "eval-interval": { type: "integer", min: 0, help: "steps between evals, 0 = never (seed 1000)" },
  "eval-steps": { type: "integer", min: 1, help: "val batches per eval (seed 100)" },
  "checkpoint-interval": {
    type: "integer",
    min: 0,
    help: "steps between checkpoints, 0 = only at the end (seed 1000)",
  },
  "log-interval": {
    type: "integer",
    min: 1,
    help: "steps per loss readback (one GPU wait); every step is still logged (seed 10)",
  },
  seed: { type: "integer", min: 0, default: 1337, help: "seed for init, data order and sampling" },
  "sample-tokens": {
    type: "integer",
    min: 0,
    help: "tokens to sample at the end (seed 64 on GPU)",
  },
  "peak-tflops": {
    type: "number",
    min: 0,
    help: "the GPU's f32 peak for MFU (default from a table)",
  },
  nproc: {
    type: "integer",
    min: 1,
    help: "rank processes to start on this machine (default 1; SM_NUM_GPUS on SageMaker)",
  },
  dist: {
    type: "string",
    default: "socket",
    choices: ["socket", "mpi"],
    help: "all-reduce transport",
  },
} as const satisfies FlagSpecs;

/** Parsed flags. */
export type TrainFlags = FlagValues<typeof TRAIN_FLAGS>;

/** The resolved configuration of one run (plain data; saved in checkpoints). */
export interface TrainConfig {
  recipe: "seed" | "cpu";
  /** Why this recipe applies, printed at start. */
  recipeReason: string;
  /** Continue from the latest checkpoint in `out`. */
  resume: boolean;
  /** A fresh run into an `out` that holds a run moves the old run aside instead of refusing. */
  moveAside: boolean;
  data: string;
  model: string;
  initFrom: string | null;
  out: string;
  maxSteps: number;
  batchSize: number;
  seqLen: number;
  gradAccum: number;
  lr: number;
  minLr: number;
  warmupSteps: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  gradClip: number;
  evalInterval: number;
  evalSteps: number;
  checkpointInterval: number;
  logInterval: number;
  seed: number;
  sampleTokens: number;
  peakTflops: number | null;
}

type RecipeDefaults =
  & Pick<
    TrainConfig,
    | "model"
    | "maxSteps"
    | "batchSize"
    | "seqLen"
    | "lr"
    | "minLr"
    | "warmupSteps"
    | "weightDecay"
    | "evalInterval"
    | "evalSteps"
    | "checkpointInterval"
    | "logInterval"
    | "sampleTokens"
  >
  & { totalBatchTokens: number | null };

/** Defaults per recipe. `totalBatchTokens: null` means one micro-batch per rank per step. */
export const RECIPES: Record<"seed" | "cpu", RecipeDefaults> = {
  seed: {
    model: "gpt2",
    maxSteps: 90_000,
    batchSize: 16,
    seqLen: 1024,
    totalBatchTokens: 524_288,
    lr: 1e-2,
    minLr: 0,
    warmupSteps: 2000,
    weightDecay: 0.125,
    evalInterval: 1000,
    evalSteps: 100,
    checkpointInterval: 1000,
    logInterval: 10,
    sampleTokens: 64,
  },
  // Sized so that 2 CPU cores through lavapipe finish in about 10 minutes (see README).
  cpu: {
    model: "cpu-small",
    maxSteps: 300,
    batchSize: 8,
    seqLen: 64,
    totalBatchTokens: null,
    lr: 3e-3,
    minLr: 3e-4,
    warmupSteps: 20,
    weightDecay: 0.1,
    evalInterval: 50,
    evalSteps: 8,
    checkpointInterval: 100,
    logInterval: 1,
    sampleTokens: 48,
  },
};

/**
 * Resolve flags against a recipe: the seed recipe on a real GPU, the cpu recipe on a
 * software adapter (unless `--model` names a preset, which selects the seed recipe's
 * hyperparameters for gpt2-family presets).
 */
export function resolveTrainConfig(
  flags: TrainFlags,
  { softwareAdapter, worldSize, env = {} }: {
    softwareAdapter: boolean;
    worldSize: number;
    /** SageMaker's SM_CHANNEL_TRAIN and SM_MODEL_DIR default --data and --out. */
    env?: Record<string, string | undefined>;
  },
): TrainConfig {
  const recipe: "seed" | "cpu" = flags.model === undefined
    ? (softwareAdapter ? "cpu" : "seed")
    : (flags.model.startsWith("gpt2") ? "seed" : "cpu");
  const d = RECIPES[recipe];
  const batchSize = flags["batch-size"] ?? d.batchSize;
  const seqLen = flags["seq-len"] ?? d.seqLen;
  const gradAccum = flags["grad-accum"] ??
    accumFromTotal(flags["total-batch-tokens"] ?? d.totalBatchTokens, batchSize, seqLen, worldSize);
  const config: TrainConfig = {
    recipe,
    recipeReason: flags.model !== undefined
      ? `--model ${flags.model}`
      : softwareAdapter
      ? `a software adapter, so the small ${d.model} model; --model gpt2 selects the 124M seed recipe`
      : "GPT-2 124M on a GPU adapter",
    resume: flags.resume,
    moveAside: flags["move-aside"],
    data: flags.data ?? env.SM_CHANNEL_TRAIN ?? "data/wordnet",
    model: flags.model ?? d.model,
    initFrom: flags["init-from"] ?? null,
    out: flags.out ?? env.SM_MODEL_DIR ?? "out",
    maxSteps: flags["max-steps"] ?? d.maxSteps,
    batchSize,
    seqLen,
    gradAccum,
    lr: flags.lr ?? d.lr,
    minLr: flags["min-lr"] ?? d.minLr,
    warmupSteps: flags["warmup-steps"] ?? d.warmupSteps,
    weightDecay: flags["weight-decay"] ?? d.weightDecay,
    beta1: flags.beta1,
    beta2: flags.beta2,
    eps: flags.eps,
    gradClip: flags["grad-clip"],
    evalInterval: flags["eval-interval"] ?? d.evalInterval,
    evalSteps: flags["eval-steps"] ?? d.evalSteps,
    checkpointInterval: flags["checkpoint-interval"] ?? d.checkpointInterval,
    logInterval: flags["log-interval"] ?? d.logInterval,
    seed: flags.seed,
    sampleTokens: flags["sample-tokens"] ?? d.sampleTokens,
    peakTflops: flags["peak-tflops"] ?? null,
  };
  if (config.minLr > config.lr) {
    throw new UsageError(`--min-lr: ${config.minLr} is above --lr ${config.lr}`);
  }
  return config;
}

/** Micro-steps per optimizer step so that all ranks together see `total` tokens. */
function accumFromTotal(
  total: number | null,
  batchSize: number,
  seqLen: number,
  worldSize: number,
): number {
  if (total === null) return 1;
  const perMicroStep = batchSize * seqLen * worldSize;
  if (total % perMicroStep !== 0) {
    throw new UsageError(
      `--total-batch-tokens: ${total} is not a multiple of batch-size x seq-len x ranks = ` +
        `${batchSize} x ${seqLen} x ${worldSize} = ${perMicroStep}`,
    );
  }
  return total / perMicroStep;
}

/** The --help trailer: what the cpu recipe changes, as the flags that would set it. */
export function cpuRecipeHelp(): string {
  const r = RECIPES.cpu;
  const flags = [
    `--model ${r.model}`,
    `--max-steps ${r.maxSteps}`,
    `--batch-size ${r.batchSize}`,
    `--seq-len ${r.seqLen}`,
    `--grad-accum 1`,
    `--lr ${r.lr}`,
    `--min-lr ${r.minLr}`,
    `--warmup-steps ${r.warmupSteps}`,
    `--weight-decay ${r.weightDecay}`,
    `--eval-interval ${r.evalInterval}`,
    `--eval-steps ${r.evalSteps}`,
    `--checkpoint-interval ${r.checkpointInterval}`,
    `--log-interval ${r.logInterval}`,
    `--sample-tokens ${r.sampleTokens}`,
  ];
  return "Defaults above are the seed recipe (GPT-2 124M). On a software adapter without --model,\n" +
    `the cpu recipe applies instead:\n  ${flags.join(" ")}`;
}

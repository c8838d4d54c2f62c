/**
 * The training run's options, in one table: from it come the train command's flags and
 * `--help`, the {@link TrainConfig} type, its resolution and the README's flag table.
 *
 * Defaults come from one of two recipes. `seed` is the GPT-2 124M recipe being reproduced
 * (524,288 tokens per step, lr 1e-2, wd 0.125, 2,000 warmup steps, cosine to 0 at 90,000 steps).
 * `cpu` is the default on a software adapter: a small model that visibly learns WordNet in
 * minutes on 2 CPU cores (see README). A flag given on the command line always wins.
 */
import { PRESET_NAMES } from "../model/config.ts";
import {
  defaultFor,
  flagName,
  flagSpecs,
  type GivenOptions,
  OptionError,
  optionsMarkdown,
  type OptionSpec,
  type OptionTable,
  type Recipe,
  type ResolvedOptions,
} from "./option_table.ts";

/** Every `deno task train` option, keyed by its {@link TrainConfig} field. */
export const TRAIN_OPTIONS = {
  data: {
    type: "string",
    default: "data/wordnet",
    env: "SM_CHANNEL_TRAIN",
    help: "data dir of llm.c shards (the WordNet default is prepared if missing)",
  },
  model: {
    type: "string",
    choices: PRESET_NAMES,
    default: { seed: "gpt2", cpu: "cpu-small" },
    help: "preset; gpt2* selects the seed recipe, others the cpu recipe",
  },
  initFrom: {
    type: "string",
    default: null,
    help: "start from a Hugging Face dir or one of our checkpoints (the file sets the model)",
  },
  out: {
    type: "string",
    default: "out",
    env: "SM_MODEL_DIR",
    help: "output dir: metrics.jsonl, tensorboard/, checkpoints/",
  },
  resume: { type: "boolean", default: false, help: "continue from the latest checkpoint in --out" },
  moveAside: {
    type: "boolean",
    default: false,
    help: "a fresh run into an --out that holds a run first moves that run aside (never deleted)",
  },
  maxSteps: {
    type: "integer",
    min: 1,
    default: { seed: 90_000, cpu: 300 },
    help: "optimizer steps",
  },
  batchSize: {
    type: "integer",
    min: 1,
    default: { seed: 16, cpu: 8 },
    help: "sequences per micro-batch per rank",
  },
  seqLen: {
    type: "integer",
    min: 1,
    default: { seed: 1024, cpu: 64 },
    help: "tokens per sequence",
  },
  totalBatchTokens: {
    type: "integer",
    min: 1,
    default: { seed: 524_288, cpu: null },
    config: false,
    help: "tokens per optimizer step, all ranks; sets --grad-accum (none: 1 micro-step)",
  },
  gradAccum: {
    type: "integer",
    min: 1,
    derived: "from --total-batch-tokens",
    help: "micro-steps per optimizer step, instead of --total-batch-tokens",
  },
  lr: { type: "number", min: 0, default: { seed: 1e-2, cpu: 3e-3 }, help: "max learning rate" },
  minLr: {
    type: "number",
    min: 0,
    default: { seed: 0, cpu: 3e-4 },
    help: "learning rate at the end of the cosine",
  },
  warmupSteps: {
    type: "integer",
    min: 0,
    default: { seed: 2000, cpu: 20 },
    help: "linear warmup steps",
  },
  weightDecay: {
    type: "number",
    min: 0,
    default: { seed: 0.125, cpu: 0.1 },
    help: "AdamW decay on tensors of 2+ dims",
  },
  beta1: { type: "number", min: 0, max: 1, default: 0.9, help: "AdamW beta1" },
  beta2: { type: "number", min: 0, max: 1, default: 0.95, help: "AdamW beta2" },
  eps: { type: "number", min: 0, default: 1e-8, help: "AdamW epsilon" },
  gradClip: { type: "number", min: 0, default: 1, help: "global gradient-norm clip (0 = off)" },
  evalInterval: {
    type: "integer",
    min: 0,
    default: { seed: 1000, cpu: 50 },
    help: "steps between evals (0 = never)",
  },
  evalSteps: {
    type: "integer",
    min: 1,
    default: { seed: 100, cpu: 8 },
    help: "val batches per eval",
  },
  hellaswag: {
    type: "string",
    default: null,
    help: "HellaSwag JSON-lines file (hellaswag_val.jsonl), scored at every eval",
  },
  hellaswagLimit: {
    type: "integer",
    min: 1,
    default: null,
    help: "score only the first N HellaSwag examples",
  },
  checkpointInterval: {
    type: "integer",
    min: 0,
    default: { seed: 1000, cpu: 100 },
    help: "steps between checkpoints (0 = only at the end)",
  },
  logInterval: {
    type: "integer",
    min: 1,
    default: { seed: 10, cpu: 1 },
    help: "steps per loss readback (one GPU wait); every step is still logged",
  },
  seed: { type: "integer", min: 0, default: 1337, help: "seed for init, data order and sampling" },
  sampleTokens: {
    type: "integer",
    min: 0,
    default: { seed: 64, cpu: 48 },
    help: "tokens to sample at the end",
  },
  peakTflops: {
    type: "number",
    min: 0,
    default: null,
    help: "the GPU's f32 peak for MFU (none: from a table of GPUs)",
  },
  nproc: {
    type: "integer",
    min: 1,
    config: false,
    derived: "1, or $SM_NUM_GPUS",
    help: "rank processes to start on this machine, one GPU each",
  },
  dist: {
    type: "string",
    choices: ["socket", "mpi"],
    default: "socket",
    config: false,
    help: "all-reduce transport",
  },
} as const satisfies OptionTable;

/** The options given on the command line, by config field. */
export type TrainFlags = GivenOptions<typeof TRAIN_OPTIONS>;

/** The resolved configuration of one run (plain data; saved in checkpoints). */
export type TrainConfig = ResolvedOptions<typeof TRAIN_OPTIONS> & {
  recipe: Recipe;
  /** Why this recipe applies, printed at start. */
  recipeReason: string;
};

/** The train command's flag specs, keyed by flag name. */
export const TRAIN_FLAG_SPECS = flagSpecs(TRAIN_OPTIONS);

/** The README's table of train flags (between its `train-flags` markers). */
export function trainFlagsMarkdown(): string {
  return optionsMarkdown(TRAIN_OPTIONS);
}

/** Pairs of options that contradict each other, and what to do instead. */
const CONFLICTS: { a: keyof TrainFlags; b: keyof TrainFlags; fix: string }[] = [
  {
    a: "model",
    b: "initFrom",
    fix: "the model comes from the --init-from file, so the preset is not used: drop --model " +
      "(and set the recipe's hyperparameters with their own flags)",
  },
  {
    a: "resume",
    b: "initFrom",
    fix: "--resume continues from the latest checkpoint in --out and would ignore --init-from: " +
      "drop --init-from to resume, or drop --resume to start a fresh run from those weights",
  },
  {
    a: "gradAccum",
    b: "totalBatchTokens",
    fix: "both set the tokens per step (batch-size x seq-len x grad-accum x ranks): give one",
  },
];

/**
 * Throws {@link OptionError} when two given options contradict each other. Needs no GPU, so a
 * command calls it before launching ranks or requesting the adapter.
 */
export function checkConflicts(given: TrainFlags): void {
  const set = (key: keyof TrainFlags) => given[key] !== undefined && given[key] !== false;
  const shown = (key: keyof TrainFlags) =>
    given[key] === true ? `--${flagName(key)}` : `--${flagName(key)} ${given[key]}`;
  for (const { a, b, fix } of CONFLICTS) {
    if (set(a) && set(b)) throw new OptionError(`${shown(a)} conflicts with ${shown(b)}: ${fix}`);
  }
}

/**
 * Resolve given options against a recipe: the seed recipe on a real GPU, the cpu recipe on a
 * software adapter; `--model` chooses instead (gpt2* presets the seed recipe, others cpu).
 */
export function resolveTrainConfig(
  given: TrainFlags,
  { softwareAdapter, worldSize, env = {} }: {
    softwareAdapter: boolean;
    worldSize: number;
    /** Environment variables named by options' `env` (SageMaker's) replace their defaults. */
    env?: Record<string, string | undefined>;
  },
): TrainConfig {
  checkConflicts(given);
  const recipe: Recipe = given.model === undefined
    ? (softwareAdapter ? "cpu" : "seed")
    : (given.model.startsWith("gpt2") ? "seed" : "cpu");
  const value = (key: keyof typeof TRAIN_OPTIONS) => {
    const spec: OptionSpec = TRAIN_OPTIONS[key];
    return given[key] ?? (spec.env ? env[spec.env] : undefined) ?? defaultFor(spec, recipe);
  };
  const resolved: Record<string, unknown> = {
    recipe,
    recipeReason: given.model !== undefined
      ? `--model ${given.model}`
      : given.initFrom !== undefined
      ? `a ${softwareAdapter ? "software" : "GPU"} adapter; the model comes from --init-from ` +
        given.initFrom
      : softwareAdapter
      ? `a software adapter, so the small ${value("model")} model; --model gpt2 selects the ` +
        "124M seed recipe"
      : "GPT-2 124M on a GPU adapter",
  };
  for (const [key, spec] of Object.entries(TRAIN_OPTIONS)) {
    if (!("config" in spec)) resolved[key] = value(key as keyof typeof TRAIN_OPTIONS);
  }
  const config = resolved as TrainConfig;
  config.gradAccum = given.gradAccum ?? accumFromTotal(
    value("totalBatchTokens") as number | null,
    config.batchSize,
    config.seqLen,
    worldSize,
  );
  if (config.minLr > config.lr) {
    throw new OptionError(`--min-lr: ${config.minLr} is above --lr ${config.lr}`);
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
    throw new OptionError(
      `--total-batch-tokens: ${total} is not a multiple of batch-size x seq-len x ranks = ` +
        `${batchSize} x ${seqLen} x ${worldSize} = ${perMicroStep}`,
    );
  }
  return total / perMicroStep;
}

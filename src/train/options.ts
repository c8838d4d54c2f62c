/**
 * The training run's options, in one table: from it come the train command's flags and
 * `--help`, the {@link TrainConfig} type, its resolution and the README's flag table.
 *
 * Defaults come from one of four recipes (see {@link RECIPES_HELP}). `seed` is the GPT-2 124M
 * recipe being reproduced (524,288 tokens per step, lr 1e-2, wd 0.125, 2,000 warmup steps,
 * cosine to 0 at 90,000 steps). `wordnet` is the default on a GPU without `--data`: a 30M
 * model (preset `mini`) and about two passes over the embedded 2.6M-token WordNet train split,
 * minutes on a laptop GPU, where the seed recipe would repeat it 16,000 times. `cpu` is the
 * default on a software adapter: a small model that visibly learns WordNet in minutes on 2 CPU
 * cores, sized by time (see README). `fast`, chosen only by `--recipe fast`, is the seed with
 * Muon for the blocks' matrices and the 10B-token budget (19,073 steps) in which llm.c's
 * GPT-2 124M reached 3.28 FineWeb val loss with AdamW: Muon needed fewer tokens here (README),
 * not yet measured at 124M. A flag given on the command line always wins.
 */
import { PRESET_NAMES } from "../model/config.ts";
import { PRECISIONS } from "../model/precision.ts";
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
  RECIPE_NAMES,
  type ResolvedOptions,
} from "./option_table.ts";

/** How the recipe is chosen, for `--help`. */
export const RECIPES_HELP =
  "Defaults come from a recipe: seed is GPT-2 124M (a GPU adapter with --data); wordnet a\n" +
  "30M model sized to the embedded WordNet corpus (a GPU adapter, no --data); cpu the small\n" +
  "one (a software adapter); fast the 124M with Muon and 10B tokens (--recipe fast only).\n" +
  "--recipe or --model chooses instead. A flag given always wins.";

/** Every `deno task train` option, keyed by its {@link TrainConfig} field. */
export const TRAIN_OPTIONS = {
  recipe: {
    type: "string",
    choices: RECIPE_NAMES,
    derived: "from the adapter and --data",
    config: false,
    help: "the set of defaults for every other flag",
  },
  data: {
    type: "string",
    default: "data/wordnet",
    env: "SM_CHANNEL_TRAIN",
    help: "data dir of llm.c shards (the WordNet default is prepared if missing)",
  },
  model: {
    type: "string",
    choices: PRESET_NAMES,
    default: { seed: "gpt2", wordnet: "mini", cpu: "cpu-small" },
    help: "preset; without --recipe it picks the recipe: gpt2* seed, mini wordnet, others cpu",
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
    default: { seed: 90_000, wordnet: 600, cpu: null, fast: 19_073 },
    help: "optimizer steps (unset: as many as --time-budget allows, fixed after the first steps)",
  },
  timeBudget: {
    type: "number",
    min: 1,
    default: { seed: null, wordnet: null, cpu: 600 },
    help: "without --max-steps: seconds for the whole run, data preparation included; the " +
      "first steps are timed, then the step count is fixed and printed",
  },
  batchSize: {
    type: "integer",
    min: 1,
    default: { seed: 16, wordnet: 32, cpu: 4 },
    help: "sequences per micro-batch per rank",
  },
  seqLen: {
    type: "integer",
    min: 1,
    default: { seed: 1024, wordnet: 256, cpu: 64 },
    help: "tokens per sequence",
  },
  totalBatchTokens: {
    type: "integer",
    min: 1,
    default: { seed: 524_288, wordnet: null, cpu: null },
    config: false,
    help: "tokens per optimizer step, all ranks; sets --grad-accum (none: 1 micro-step)",
  },
  gradAccum: {
    type: "integer",
    min: 1,
    derived: "from --total-batch-tokens",
    help: "micro-steps per optimizer step, instead of --total-batch-tokens",
  },
  lr: {
    type: "number",
    min: 0,
    default: { seed: 1e-2, wordnet: 3e-3, cpu: 3e-3 },
    help: "max learning rate",
  },
  minLr: {
    type: "number",
    min: 0,
    default: { seed: 0, wordnet: 3e-4, cpu: 3e-4 },
    help: "learning rate at the end of the cosine",
  },
  warmupSteps: {
    type: "integer",
    min: 0,
    default: { seed: 2000, wordnet: 30, cpu: 20 },
    help: "linear warmup steps",
  },
  weightDecay: {
    type: "number",
    min: 0,
    default: { seed: 0.125, wordnet: 0.1, cpu: 0.1 },
    help: "decoupled weight decay on tensors of 2+ dims",
  },
  beta1: { type: "number", min: 0, max: 1, default: 0.9, help: "AdamW beta1" },
  beta2: { type: "number", min: 0, max: 1, default: 0.95, help: "AdamW beta2" },
  eps: { type: "number", min: 0, default: 1e-8, help: "AdamW epsilon" },
  gradClip: { type: "number", min: 0, default: 1, help: "global gradient-norm clip (0 = off)" },
  optimizer: {
    type: "string",
    choices: ["adamw", "muon"],
    default: { seed: "adamw", wordnet: "adamw", cpu: "muon", fast: "muon" },
    help: "muon: Muon for the 2-D weights inside the blocks, AdamW for embeddings and gains",
  },
  muonLr: {
    type: "number",
    min: 0,
    default: 0.02,
    help: "Muon's max learning rate (--lr's warmup and cosine, --min-lr scaled alike)",
  },
  precision: {
    type: "string",
    choices: PRECISIONS,
    default: "f32",
    help: "storage of activations, their gradients and the weight copy (master weights, " +
      "AdamW state and checkpoints stay f32)",
  },
  autotune: {
    type: "string",
    choices: ["off", "cached", "refresh"],
    default: "cached",
    help: "matmul configurations per shape: timed on first use and cached (cached), " +
      "timed again (refresh), or the fixed defaults (off)",
  },
  evalInterval: {
    type: "integer",
    min: 0,
    default: { seed: 1000, wordnet: 30, cpu: 100 },
    help: "steps between evals (0 = never)",
  },
  evalSteps: {
    type: "integer",
    min: 1,
    default: { seed: 100, wordnet: 20, cpu: 16 },
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
    default: { seed: 1000, wordnet: 200, cpu: 100 },
    help: "steps between checkpoints (0 = only at the end)",
  },
  logInterval: {
    type: "integer",
    min: 1,
    default: { seed: 10, wordnet: 10, cpu: 1 },
    help: "steps per loss readback (one GPU wait); every step is still logged",
  },
  dashboard: {
    type: "boolean",
    default: false,
    help: "serve a live dashboard of --out on 127.0.0.1 and print its URL",
  },
  seed: { type: "integer", min: 0, default: 1337, help: "seed for init, data order and sampling" },
  sampleTokens: {
    type: "integer",
    min: 0,
    default: { seed: 64, wordnet: 128, cpu: 48 },
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
    choices: ["shm", "socket", "mpi"],
    default: "shm",
    config: false,
    help: "all-reduce transport: shm (shared memory, one host), socket (Unix-socket ring), mpi",
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
    a: "resume",
    b: "moveAside",
    fix: "--move-aside applies to a fresh run only; --resume continues the run in --out",
  },
  {
    a: "maxSteps",
    b: "timeBudget",
    fix: "--max-steps fixes the step count, --time-budget sizes it by time: give one",
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
 * Resolve given options against a recipe: `--recipe` when given; else the recipe `--model`
 * selects; else the cpu recipe on a software adapter, the seed recipe on a GPU with `--data`
 * (or SageMaker's channel), and the WordNet-sized one on a GPU without.
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
  const dataGiven = given.data ?? env[TRAIN_OPTIONS.data.env];
  const { recipe, recipeReason } = chooseRecipe(given, softwareAdapter, dataGiven);
  const value = (key: keyof typeof TRAIN_OPTIONS) => {
    const spec: OptionSpec = TRAIN_OPTIONS[key];
    return given[key] ?? (spec.env ? env[spec.env] : undefined) ?? defaultFor(spec, recipe);
  };
  const resolved: Record<string, unknown> = { recipe, recipeReason };
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
  if (config.maxSteps === null && config.timeBudget === null) {
    throw new OptionError(
      `recipe ${recipe} sets no step count here: give --max-steps or --time-budget`,
    );
  }
  if (config.minLr > config.lr) {
    throw new OptionError(`--min-lr: ${config.minLr} is above --lr ${config.lr}`);
  }
  return config;
}

/** The recipe for `given` and why, as printed at start. */
function chooseRecipe(
  given: TrainFlags,
  softwareAdapter: boolean,
  dataGiven: string | undefined,
): { recipe: Recipe; recipeReason: string } {
  if (given.recipe !== undefined) return { recipe: given.recipe, recipeReason: "--recipe" };
  const model = given.model;
  if (model !== undefined) {
    const own = RECIPE_NAMES.find((r) => defaultFor(TRAIN_OPTIONS.model, r) === model);
    return {
      recipe: own ?? (model.startsWith("gpt2") ? "seed" : "cpu"),
      recipeReason: `--model ${model}`,
    };
  }
  const adapter = softwareAdapter ? "a software adapter" : "a GPU adapter";
  if (given.initFrom !== undefined) {
    const recipe = softwareAdapter ? "cpu" : dataGiven !== undefined ? "seed" : "wordnet";
    return {
      recipe,
      recipeReason: `${adapter}; the model comes from --init-from ${given.initFrom}`,
    };
  }
  if (softwareAdapter) {
    return {
      recipe: "cpu",
      recipeReason: `${adapter}, so the small ${defaultFor(TRAIN_OPTIONS.model, "cpu")} model; ` +
        "--recipe seed selects the 124M seed recipe",
    };
  }
  if (dataGiven !== undefined) {
    return { recipe: "seed", recipeReason: `GPT-2 124M on ${adapter} with data ${dataGiven}` };
  }
  return {
    recipe: "wordnet",
    recipeReason: `${adapter} and no --data: the ${defaultFor(TRAIN_OPTIONS.model, "wordnet")} ` +
      "model for about two passes over the embedded WordNet corpus; --data DIR selects the " +
      "124M seed recipe",
  };
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

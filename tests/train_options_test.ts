import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { parseFlags, UsageError } from "../src/commands/flags.ts";
import { givenFromFlags, OptionError } from "../src/train/option_table.ts";
import {
  RECIPES_HELP,
  resolveTrainConfig,
  TRAIN_FLAG_SPECS,
  TRAIN_OPTIONS,
} from "../src/train/options.ts";

const given = (args: string[]) =>
  givenFromFlags(TRAIN_OPTIONS, parseFlags(args, TRAIN_FLAG_SPECS).values);
const resolve = (args: string[], softwareAdapter = false, worldSize = 1) =>
  resolveTrainConfig(given(args), { softwareAdapter, worldSize });

Deno.test("train options: the seed recipe is the default on a real GPU with --data", () => {
  const c = resolve(["--data", "shards"]);
  assertEquals([c.recipe, c.recipeReason], [
    "seed",
    "GPT-2 124M on a GPU adapter with data shards",
  ]);
  assertEquals(c.model, "gpt2");
  assertEquals([c.batchSize, c.seqLen, c.gradAccum], [16, 1024, 32]);
  assertEquals([c.lr, c.minLr, c.warmupSteps, c.maxSteps], [1e-2, 0, 2000, 90000]);
  assertEquals([c.weightDecay, c.beta1, c.beta2, c.eps, c.gradClip], [0.125, 0.9, 0.95, 1e-8, 1]);
  assertEquals([c.evalInterval, c.evalSteps, c.checkpointInterval], [1000, 100, 1000]);
  assertEquals([c.logInterval, c.seed, c.sampleTokens], [10, 1337, 64]);
  assertEquals([c.initFrom, c.peakTflops, c.resume, c.moveAside], [null, null, false, false]);
  assertEquals([c.optimizer, c.muonLr], ["adamw", 0.02]);
});

Deno.test("train options: fast is the seed with Muon and 10B tokens, chosen only by --recipe", () => {
  const fast = resolve(["--recipe", "fast", "--data", "shards"]);
  const seed = resolve(["--data", "shards"]);
  assertEquals([fast.recipe, fast.optimizer, fast.maxSteps], ["fast", "muon", 19_073]);
  assertEquals(fast.maxSteps! * fast.batchSize * fast.seqLen * fast.gradAccum, 9_999_745_024);
  // Every other default is the seed's.
  const rest = (c: typeof seed) => ({
    ...c,
    recipe: 0,
    recipeReason: 0,
    optimizer: 0,
    maxSteps: 0,
  });
  assertEquals(rest(fast), rest(seed));
  assertEquals(resolve(["--recipe", "fast", "--optimizer", "adamw"]).optimizer, "adamw");
  // --model gpt2 picks the seed recipe, never fast.
  assertEquals(resolve(["--model", "gpt2"]).recipe, "seed");
  assert(RECIPES_HELP.includes("--recipe fast only"));
});

Deno.test("train options: a GPU without --data gets the recipe sized to the WordNet corpus", () => {
  const c = resolve([]);
  assertEquals(c.recipe, "wordnet");
  assert(c.recipeReason.startsWith("a GPU adapter and no --data: the mini model"), c.recipeReason);
  assertEquals([c.model, c.data, c.batchSize, c.seqLen, c.gradAccum], [
    "mini",
    "data/wordnet",
    32,
    256,
    1,
  ]);
  // About two passes over the 2.6M-token train split, an eval every 5% and a sample at the end.
  const tokens = c.maxSteps! * c.batchSize * c.seqLen * c.gradAccum;
  assert(tokens > 2.6e6 && tokens < 3 * 2.6e6, `${tokens} tokens`);
  assertEquals(c.maxSteps! / c.evalInterval, 20);
  assert(c.sampleTokens > 0);
  // --data on a GPU (or SageMaker's channel) is the seed recipe; --init-from keeps the choice.
  assertEquals(
    resolveTrainConfig(given([]), {
      softwareAdapter: false,
      worldSize: 1,
      env: { SM_CHANNEL_TRAIN: "/opt/ml/input/data/train" },
    }).recipe,
    "seed",
  );
  assertEquals(resolve(["--init-from", "w"]).recipe, "wordnet");
  assertEquals(resolve(["--init-from", "w", "--data", "d"]).recipe, "seed");
  assertEquals(resolve(["--model", "mini"], true).recipe, "wordnet");
});

Deno.test("train options: --recipe wins over the adapter, --data and --model; flags over it", () => {
  for (const recipe of ["seed", "wordnet", "cpu", "fast"] as const) {
    for (const soft of [false, true]) {
      const c = resolve(["--recipe", recipe, "--model", "tiny", "--data", "d"], soft);
      assertEquals([c.recipe, c.recipeReason, c.model], [recipe, "--recipe", "tiny"]);
    }
  }
  const c = resolve(["--recipe", "seed", "--max-steps", "7"], true);
  assertEquals([c.model, c.maxSteps, c.lr, c.gradAccum], ["gpt2", 7, 1e-2, 32]);
  assertThrows(() => given(["--recipe", "quick"]), UsageError, '--recipe: "quick" is not one of');
});

Deno.test("train options: the config keeps the fields checkpoints store, and no flag-only ones", () => {
  assertEquals(
    Object.keys(resolve([])).sort(),
    [
      "recipe",
      "recipeReason",
      "resume",
      "moveAside",
      "data",
      "model",
      "initFrom",
      "out",
      "maxSteps",
      "timeBudget",
      "batchSize",
      "seqLen",
      "gradAccum",
      "lr",
      "minLr",
      "warmupSteps",
      "weightDecay",
      "beta1",
      "beta2",
      "eps",
      "gradClip",
      "evalInterval",
      "evalSteps",
      "hellaswag",
      "hellaswagLimit",
      "checkpointInterval",
      "logInterval",
      "dashboard",
      "seed",
      "sampleTokens",
      "peakTflops",
      "optimizer",
      "muonLr",
      "precision",
      "autotune",
    ].sort(),
  );
});

Deno.test("train options: grad accumulation derives from total tokens and world size", () => {
  assertEquals(resolve(["--data", "d"], false, 8).gradAccum, 4);
  assertEquals(resolve(["--data", "d", "--grad-accum", "3"], false, 8).gradAccum, 3);
  assertEquals(resolve(["--data", "d", "--total-batch-tokens", "65536"], false, 2).gradAccum, 2);
  assertThrows(
    () => resolve(["--data", "d", "--total-batch-tokens", "1000"]),
    OptionError,
    "--total-batch-tokens: 1000 is not a multiple",
  );
});

Deno.test("train options: a software adapter gets the cpu recipe; flags still win", () => {
  const c = resolve(["--lr", "1e-3"], true);
  assertEquals(c.recipe, "cpu");
  assertEquals(c.model, "cpu-small");
  assertEquals(c.lr, 1e-3);
  // Sized by time: the step count is fixed after timing the first steps (step_budget.ts).
  assertEquals([c.maxSteps, c.timeBudget], [null, 600]);
  assertEquals([c.batchSize, c.seqLen, c.gradAccum, c.minLr], [4, 64, 1, 3e-4]);
  assertEquals([c.evalInterval, c.evalSteps, c.logInterval, c.sampleTokens], [100, 16, 1, 48]);
  assertEquals([c.optimizer, c.muonLr], ["muon", 0.02]);
  assertEquals(resolve(["--model", "gpt2"], true).recipe, "seed");
  assertEquals(resolve(["--model", "tiny"], false).recipe, "cpu");
  assertEquals(resolve(["--model", "gpt2-xl"], true).recipeReason, "--model gpt2-xl");
  const init = resolve(["--init-from", "hf/gpt2"], true);
  assertEquals([init.recipe, init.initFrom], ["cpu", "hf/gpt2"]);
  assertEquals(init.recipeReason, "a software adapter; the model comes from --init-from hf/gpt2");
  assert(resolve([], true).recipeReason.startsWith("a software adapter, so the small cpu-small"));
  assertEquals(resolve(["--data", "d"], true).recipe, "cpu");
});

Deno.test("train options: an unknown preset is a usage error listing the presets", () => {
  assertThrows(() => given(["--model", "gpt3"]), UsageError, '--model: "gpt3" is not one of gpt2,');
});

Deno.test("train options: --min-lr above --lr names both flags", () => {
  assertThrows(
    () => resolve(["--lr", "1e-3", "--min-lr", "1e-2"]),
    OptionError,
    "--min-lr: 0.01 is above --lr 0.001",
  );
});

Deno.test("train options: SageMaker's channel and model dir are the defaults for --data/--out", () => {
  const env = { SM_CHANNEL_TRAIN: "/opt/ml/input/data/train", SM_MODEL_DIR: "/opt/ml/model" };
  const c = resolveTrainConfig(given([]), { softwareAdapter: false, worldSize: 8, env });
  assertEquals([c.data, c.out], ["/opt/ml/input/data/train", "/opt/ml/model"]);
  const o = resolveTrainConfig(given(["--out", "o"]), {
    softwareAdapter: false,
    worldSize: 8,
    env,
  });
  assertEquals(o.out, "o");
  const d = resolve(["--out", "o"]);
  assertEquals([d.data, d.out], ["data/wordnet", "o"]);
});

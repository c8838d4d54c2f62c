import { assertEquals, assertThrows } from "./_assert.ts";
import { parseFlags, UsageError } from "../src/commands/flags.ts";
import { resolveTrainConfig, TRAIN_FLAGS } from "../src/train/options.ts";

const resolve = (args: string[], softwareAdapter = false, worldSize = 1) =>
  resolveTrainConfig(parseFlags(args, TRAIN_FLAGS).values, { softwareAdapter, worldSize });

Deno.test("train options: the seed recipe is the default on a real GPU", () => {
  const c = resolve([]);
  assertEquals(c.recipe, "seed");
  assertEquals(c.model, "gpt2");
  assertEquals([c.batchSize, c.seqLen, c.gradAccum], [16, 1024, 32]);
  assertEquals([c.lr, c.minLr, c.warmupSteps, c.maxSteps], [1e-2, 0, 2000, 90000]);
  assertEquals([c.weightDecay, c.beta1, c.beta2, c.eps, c.gradClip], [0.125, 0.9, 0.95, 1e-8, 1]);
  assertEquals([c.evalInterval, c.evalSteps], [1000, 100]);
});

Deno.test("train options: grad accumulation derives from total tokens and world size", () => {
  assertEquals(resolve([], false, 8).gradAccum, 4);
  assertEquals(resolve(["--grad-accum", "3"], false, 8).gradAccum, 3);
  assertThrows(
    () => resolve(["--total-batch-tokens", "1000"]),
    UsageError,
    "--total-batch-tokens: 1000 is not a multiple",
  );
});

Deno.test("train options: a software adapter gets the cpu recipe; flags still win", () => {
  const c = resolve(["--lr", "1e-3"], true);
  assertEquals(c.recipe, "cpu");
  assertEquals(c.model, "cpu-small");
  assertEquals(c.lr, 1e-3);
  assertEquals(c.gradAccum, 1);
  assertEquals(resolve(["--model", "gpt2"], true).recipe, "seed");
});

Deno.test("train options: SageMaker's channel and model dir are the defaults for --data/--out", () => {
  const env = { SM_CHANNEL_TRAIN: "/opt/ml/input/data/train", SM_MODEL_DIR: "/opt/ml/model" };
  const c = resolveTrainConfig(parseFlags([], TRAIN_FLAGS).values, {
    softwareAdapter: false,
    worldSize: 8,
    env,
  });
  assertEquals([c.data, c.out], ["/opt/ml/input/data/train", "/opt/ml/model"]);
  const d = resolveTrainConfig(parseFlags(["--out", "o"], TRAIN_FLAGS).values, {
    softwareAdapter: false,
    worldSize: 1,
  });
  assertEquals([d.data, d.out], ["data/wordnet", "o"]);
});

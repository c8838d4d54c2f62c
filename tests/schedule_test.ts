import { assertEquals } from "./_assert.ts";
import { learningRate } from "../src/optim/schedule.ts";

const SEED = { maxLr: 1e-2, minLr: 0, warmupSteps: 2000, maxSteps: 90000 };

Deno.test("schedule: linear warmup, cosine to min at max steps", () => {
  assertEquals(learningRate(0, SEED), 1e-2 / 2000);
  assertEquals(learningRate(999, SEED), 1e-2 * 1000 / 2000);
  assertEquals(learningRate(1999, SEED), 1e-2);
  assertEquals(learningRate(2000, SEED), 1e-2);
  // Halfway through the decay the cosine is at its midpoint.
  assertEquals(Math.abs(learningRate(46000, SEED) - 5e-3) < 1e-12, true);
  assertEquals(learningRate(90000, SEED), 0);
  // Monotone decreasing after warmup.
  let last = Infinity;
  for (let s = 2000; s <= 90000; s += 500) {
    const lr = learningRate(s, SEED);
    assertEquals(lr <= last, true, `step ${s}`);
    last = lr;
  }
});

Deno.test("schedule: constant when min equals max and no warmup", () => {
  const constant = { maxLr: 1e-3, minLr: 1e-3, warmupSteps: 0, maxSteps: 10 };
  for (let s = 0; s < 12; s++) assertEquals(learningRate(s, constant), 1e-3);
});

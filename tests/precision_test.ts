/**
 * Mixed precision in the whole model (src/model/precision.ts): bf16 and f16 GPT-2s against the
 * f32 one and against the CPU reference, f16 rounding on the GPU against the CPU's, and f16's
 * dynamic loss scaling.
 *
 * Tolerances (one rounding is 2^-9 = 2e-3 relative in bf16, 2^-12 = 2.4e-4 in f16):
 *   loss of one step vs the f32 CPU reference   rtol 1e-2 bf16, 1e-3 f16
 *   parameter gradients                          per tensor, atol 2.5e-2 (bf16) or 3e-3 (f16)
 *                                                times max |reference gradient of the tensor|
 *                                                (measured: 1.1e-2 and 1.6e-3, f16 with f16
 *                                                matmul and attention products, f32 residual)
 *   10 AdamW steps: each step's loss vs f32's    rtol 1e-2 (issue 11's bar)
 */
import { assert, assertClose, assertEquals } from "./_assert.ts";
import { requestGpu } from "../src/gpu/device.ts";
import { fromF16Bits, readStorage, roundTo, toF16Bits } from "../src/gpu/storage.ts";
import { createAdamW } from "../src/optim/adamw.ts";
import { createBuffer, readBuffer, uploadBuffer } from "../src/gpu/buffer.ts";
import { submit } from "../src/gpu/kernel.ts";
import { makeConfig, presetConfig } from "../src/model/config.ts";
import { GPT2 } from "../src/model/gpt2.ts";
import { initParams } from "../src/model/init.ts";
import { paramLayout, view } from "../src/model/params.ts";
import type { Precision } from "../src/model/precision.ts";
import { gpt2ForwardBackward } from "../src/model/reference/gpt2.ts";
import { Rng } from "../src/model/rng.ts";

const OPTIMIZER = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1.0 };

function maxAbs(a: Float32Array): number {
  return a.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
}

const PARITY = {
  bf16: { loss: 1e-2, grad: 2.5e-2 },
  f16: { loss: 1e-3, grad: 3e-3 },
};

for (const type of ["bf16", "f16"] as const) {
  Deno.test(`precision: ${type} loss and gradients match the f32 CPU reference; the weight copy is the rounded master`, async () => {
    const gpu = await requestGpu();
    const config = makeConfig({
      numLayers: 2,
      numHeads: 2,
      channels: 24,
      maxSeqLen: 16,
      vocabSize: 101,
    });
    const layout = paramLayout(config);
    const B = 2, T = 9;
    const params = initParams(layout, 3);
    const rng = new Rng(5);
    const tokens = Uint32Array.from({ length: B * T + 1 }, () => rng.nextInt(config.vocabSize));
    const inputs = tokens.slice(0, B * T), targets = tokens.slice(1);
    const grads = new Float32Array(layout.totalFloats);
    const loss = gpt2ForwardBackward(config, params, grads, inputs, targets, B, T);

    // f16: a loss scale of 1024 keeps the small activation gradients (~1e-5) in f16's normal range.
    const model = await GPT2.create(gpu, config, {
      B,
      T,
      precision: type,
      lossScale: { initial: 1024 },
    });
    try {
      assertEquals(model.type, type);
      model.upload("params", params);
      const copy = await readStorage(gpu, type, model.weights, layout.totalFloats);
      assertEquals(copy, roundTo(type, params));
      model.zeroGrads();
      model.uploadBatch(inputs, targets);
      model.step();
      assertClose([await model.readLoss()], [loss], {
        rtol: PARITY[type].loss,
        atol: 0,
        label: `${type} loss`,
      });
      // The gradients are those of the loss times the loss scale.
      const scale = (await model.readLossScale()).scale;
      assertEquals(scale, type === "f16" ? 1024 : 1);
      const gpuGrads = (await model.download("grads")).map((g) => g / scale);
      let worst = 0;
      for (const t of layout.tensors) {
        const want = view(grads, t), got = view(gpuGrads, t);
        const m = maxAbs(want);
        for (let i = 0; i < want.length; i++) {
          worst = Math.max(worst, Math.abs(got[i] - want[i]) / m);
        }
        assertClose(got, want, {
          rtol: 0,
          atol: PARITY[type].grad * m,
          label: `${type} grad ${t.name}`,
        });
      }
      console.log(`${type}: worst gradient error ${worst.toExponential(2)} of the tensor's max`);
      // uploadTensor refreshes that tensor's copy.
      model.uploadTensor("params", "ln_f.weight", new Float32Array(24).fill(1.0078125 + 2 ** -10));
      const lnf = layout.get("ln_f.weight");
      const after = await readStorage(gpu, type, model.weights, layout.totalFloats);
      assertEquals(
        view(after, lnf),
        roundTo(type, new Float32Array(24).fill(1.0078125 + 2 ** -10)),
      );
      gpu.throwIfFailed(`${type} parity`);
    } finally {
      model.destroy();
    }
  });
}

Deno.test("precision: the GPU rounds f32 to f16 as toF16Bits does: ties to even, subnormals, overflow to infinity, NaN", async () => {
  const gpu = await requestGpu();
  const values = new Float32Array([
    0,
    -0,
    1,
    -1,
    65504,
    65519.99,
    65520,
    -65520,
    1e6,
    Infinity,
    -Infinity,
    NaN,
    1 + 2 ** -11,
    1 + 3 * 2 ** -11,
    1 + 2 ** -11 + 2 ** -20, // ties to even, just above a tie
    2 ** -14,
    2 ** -15,
    2 ** -24,
    2 ** -25,
    3 * 2 ** -25,
    2 ** -26,
    6.1e-5,
    -3.3e-7,
    ...Array.from({ length: 64 }, (_, i) => Math.sin(i) * 10 ** ((i % 12) - 6)),
  ]);
  const n = values.length;
  const adamw = await createAdamW(gpu, { copyType: "f16" });
  const params = uploadBuffer(gpu, values, "f32 values");
  const copy = createBuffer(gpu, n * 2, "f16 copy");
  const dispatches = adamw.copy({ params, copy }, n);
  submit(gpu, dispatches);
  const bits = new Uint16Array(await readBuffer(gpu, copy), 0, n);
  assertEquals(bits, toF16Bits(values));
  const back = fromF16Bits(bits);
  assertEquals(Array.from(back.subarray(0, 12)), [
    0,
    -0,
    1,
    -1,
    65504,
    65504,
    Infinity,
    -Infinity,
    Infinity,
    Infinity,
    -Infinity,
    NaN,
  ]);
  assertEquals(Array.from(back.subarray(12, 15)), [1, 1 + 4 * 2 ** -11, 1 + 2 * 2 ** -11]);
  assertEquals(Array.from(back.subarray(17, 21)), [2 ** -24, 0, 2 * 2 ** -24, 0]);
  for (const d of dispatches) d.destroy();
  params.destroy();
  copy.destroy();
});

/** Losses of `steps` AdamW steps of `config` from the same weights and batches. */
async function trainLosses(precision: Precision, steps: number): Promise<number[]> {
  const gpu = await requestGpu();
  const config = presetConfig("tiny");
  const B = 4, T = 32;
  const layout = paramLayout(config);
  const rng = new Rng(9);
  const model = await GPT2.create(gpu, config, { B, T, precision });
  try {
    model.upload("params", initParams(layout, 1));
    await model.setOptimizer(OPTIMIZER);
    const losses: number[] = [];
    // A learnable stream (a repeating random phrase) so the loss moves a lot in 10 steps.
    const phrase = Uint32Array.from({ length: 13 }, () => rng.nextInt(config.vocabSize));
    for (let step = 1; step <= steps; step++) {
      const tokens = Uint32Array.from({ length: B * T + 1 }, (_, i) => phrase[(i + step) % 13]);
      model.zeroGrads();
      model.uploadBatch(tokens.slice(0, B * T), tokens.slice(1));
      model.step();
      model.optimizerStep(step, 1e-2);
      losses.push(await model.readLoss());
    }
    const weights = await model.download("params");
    assert(weights.every(Number.isFinite), `${precision}: non-finite weights`);
    gpu.throwIfFailed(`${precision} training`);
    return losses;
  } finally {
    model.destroy();
  }
}

Deno.test("precision: 10 AdamW steps of the tiny model in bf16 and in f16 stay within 1e-2 of f32's losses", async () => {
  const f32 = await trainLosses("f32", 10);
  console.log(`f32  ${f32.map((x) => x.toFixed(4)).join(" ")}`);
  assert(f32[9] < f32[0] - 1, `f32 did not learn: ${f32[0]} -> ${f32[9]}`);
  for (const precision of ["bf16", "f16"] as const) {
    const losses = await trainLosses(precision, 10);
    console.log(`${precision.padEnd(4)} ${losses.map((x) => x.toFixed(4)).join(" ")}`);
    assertClose(losses, f32, { rtol: 1e-2, atol: 0, label: `${precision} losses` });
  }
});

Deno.test("precision: f16 starts from a given loss-scale state (a resume's scale and skip count)", async () => {
  const gpu = await requestGpu();
  const model = await GPT2.create(gpu, presetConfig("tiny"), {
    B: 1,
    T: 8,
    precision: "f16",
    lossScale: { initial: 1024, skippedSteps: 7 },
  });
  try {
    assertEquals(await model.readLossScale(), { scale: 1024, skippedSteps: 7 });
  } finally {
    model.destroy();
  }
});

Deno.test("precision: f16 forced overflow (a huge initial loss scale) skips the step and halves the scale; training goes on, weights stay finite", async () => {
  const gpu = await requestGpu();
  const config = presetConfig("tiny");
  const B = 2, T = 16;
  const layout = paramLayout(config);
  const initial = 2 ** 24;
  const model = await GPT2.create(gpu, config, {
    B,
    T,
    precision: "f16",
    lossScale: { initial, growthInterval: 3 },
  });
  try {
    const params = initParams(layout, 2);
    model.upload("params", params);
    await model.setOptimizer(OPTIMIZER);
    const rng = new Rng(4);
    const phrase = Uint32Array.from({ length: 7 }, () => rng.nextInt(config.vocabSize));
    const tokens = Uint32Array.from({ length: B * T + 1 }, (_, i) => phrase[i % 7]);
    const trainStep = (step: number) => {
      model.zeroGrads();
      model.uploadBatch(tokens.slice(0, B * T), tokens.slice(1));
      model.step();
      model.optimizerStep(step, 1e-2);
    };
    // Skipped steps: the gradients overflowed, nothing moved, the scale halves each time.
    let step = 0, scale = initial;
    for (; step < 40; step++) {
      trainStep(step + 1);
      const state = await model.readLossScale();
      const grads = await model.download("grads");
      if (grads.every(Number.isFinite)) break;
      scale /= 2;
      assertEquals(state, { scale, skippedSteps: step + 1 });
      assertEquals(await model.download("params"), params, `params moved on skipped step ${step}`);
      assertEquals((await model.download("m")).every((x) => x === 0), true);
    }
    assert(step >= 1 && step < 40, `${step} steps skipped`);
    console.log(`f16: ${step} steps skipped from 2^24, training at scale 2^${Math.log2(scale)}`);
    // The first good step updated the weights at the scale it used, without changing it.
    assertEquals(await model.readLossScale(), { scale, skippedSteps: step });
    const moved = await model.download("params");
    assert(moved.some((x, i) => x !== params[i]), "the first good step did not update");
    // Training goes on: two more good steps make growthInterval (3): the scale doubles.
    const first = await model.readLoss();
    trainStep(step + 2);
    trainStep(step + 3);
    assertEquals(await model.readLossScale(), { scale: scale * 2, skippedSteps: step });
    for (let k = 4; k <= 8; k++) trainStep(step + k);
    const last = await model.readLoss();
    assert(last < first, `loss did not go down after the skips: ${first} -> ${last}`);
    const weights = await model.download("params");
    assert(weights.every(Number.isFinite), "a non-finite value reached the weights");
    gpu.throwIfFailed("f16 overflow");
  } finally {
    model.destroy();
  }
});

/**
 * Muon on the GPU against its CPU reference (torch.optim.Muon op by op): wide, tall and square
 * tensors at odd and vector-friendly shapes in one flat buffer, over clipped steps; reruns are
 * bit-identical; in GPT2 the blocks' matrices take Muon steps (momentum in `m`, `v` zero) and
 * every other tensor AdamW's. Tolerance: the products sum in f32 in another order than the
 * reference's f64 sums (1e-5 relative per product, as in matmul_test.ts), compounded over 5
 * Newton-Schulz iterations and 3 steps; a 1e-4 change of one coefficient fails it.
 */
import { assert, assertClose, assertEquals, assertThrows } from "./_assert.ts";
import { randomFloats } from "./_random.ts";
import { requestGpu, withErrorScope } from "../src/gpu/device.ts";
import { readF32, uploadBuffer, writeBuffer } from "../src/gpu/buffer.ts";
import { submit } from "../src/gpu/kernel.ts";
import { createMatmul } from "../src/model/matmul.ts";
import { createGradNorm } from "../src/optim/grad_norm.ts";
import { createMuon, type MuonConfig, type MuonTensor } from "../src/optim/muon.ts";
import { muonStep, newtonSchulz } from "../src/optim/reference/muon.ts";
import { gradNormAndScale } from "../src/optim/reference/grad_norm.ts";
import { adamwStep } from "../src/optim/reference/adamw.ts";
import { learningRate, scaledSchedule } from "../src/optim/schedule.ts";
import { GPT2 } from "../src/model/gpt2.ts";
import { makeConfig } from "../src/model/config.ts";
import { paramLayout } from "../src/model/params.ts";
import { initParams } from "../src/model/init.ts";

const CONFIG: MuonConfig = { momentum: 0.95, weightDecay: 0.1 };

/** Wide, tall (odd sizes: scalar kernels), square and a 4-aligned tall one, 64-float aligned. */
const TENSORS: MuonTensor[] = [
  { name: "wide", offset: 0, rows: 13, cols: 37 },
  { name: "tall", offset: 512, rows: 41, cols: 11 },
  { name: "square", offset: 1024, rows: 24, cols: 24 },
  { name: "tall4", offset: 1664, rows: 64, cols: 16 },
];
const N = 2752;

/** Run 3 clipped Muon steps on the GPU; returns params and momentum. */
async function gpuSteps(
  p0: Float32Array<ArrayBuffer>,
  grads: Float32Array<ArrayBuffer>[],
  lrs: number[],
  clip: number,
) {
  const gpu = await requestGpu();
  const matmul = await createMatmul(gpu);
  const gradNorm = await createGradNorm(gpu);
  const muon = await createMuon(gpu, { gemm: matmul, gradNorm });
  const buf = {
    params: uploadBuffer(gpu, p0, "params"),
    grads: uploadBuffer(gpu, new Float32Array(N), "grads"),
    momentum: uploadBuffer(gpu, new Float32Array(N), "momentum"),
    normScale: uploadBuffer(gpu, new Float32Array(4), "norm and scale"),
  };
  const step = muon.bind(buf, TENSORS, CONFIG);
  const norm = gradNorm.bind({ grads: buf.grads, result: buf.normScale }, { n: N, clip });
  for (const [t, g] of grads.entries()) {
    writeBuffer(gpu, buf.grads, g);
    step.setLr(lrs[t]);
    await withErrorScope(gpu, "muon", () => submit(gpu, [...norm, ...step.dispatches]));
  }
  const out = {
    params: (await readF32(gpu, buf.params)).slice(0, N),
    momentum: (await readF32(gpu, buf.momentum)).slice(0, N),
  };
  for (const b of Object.values(buf)) b.destroy();
  for (const d of [...norm, ...step.dispatches]) d.destroy();
  muon.destroy();
  gradNorm.destroy();
  matmul.destroy();
  return out;
}

const P0 = randomFloats(N, 1, 0.5);
const GRADS = [randomFloats(N, 11, 0.5), randomFloats(N, 12, 0.001), randomFloats(N, 13, 0.5)];
const LRS = [0.02, 0.015, 0.01];

Deno.test("muon: 3 clipped steps on wide, tall and square tensors match the CPU reference", async () => {
  const clip = 1;
  const got = await gpuSteps(P0, GRADS, LRS, clip);
  const want = { params: P0.slice(), momentum: new Float32Array(N) };
  for (const [t, g] of GRADS.entries()) {
    const { scale } = gradNormAndScale(g, N, clip);
    assert(t !== 1 || scale === 1, "step 2 is under the clip threshold");
    for (const tensor of TENSORS) {
      muonStep(want.params, g, want.momentum, tensor, {
        lr: LRS[t],
        gradScale: scale,
        config: CONFIG,
      });
    }
  }
  assertClose(got.momentum, want.momentum, { rtol: 1e-6, atol: 1e-9, label: "momentum" });
  assertClose(got.params, want.params, { rtol: 1e-5, atol: 1e-6, label: "params" });
  // Elements outside every tensor (alignment padding) are left alone.
  assertEquals(got.params.slice(13 * 37, 512), P0.slice(13 * 37, 512));
  // And the step moved every tensor by about lr per element (an orthogonal update's scale).
  for (const t of TENSORS) {
    const moved = got.params.subarray(t.offset, t.offset + t.rows * t.cols)
      .reduce((sum, p, i) => sum + Math.abs(p - P0[t.offset + i]), 0) / (t.rows * t.cols);
    assert(moved > 0.003 && moved < 0.05, `${t.name} moved ${moved} per element`);
  }
});

Deno.test("muon: reruns are bit-identical", async () => {
  const a = await gpuSteps(P0, GRADS, LRS, 1);
  const b = await gpuSteps(P0, GRADS, LRS, 1);
  assertEquals(new Uint32Array(a.params.buffer), new Uint32Array(b.params.buffer));
  assertEquals(new Uint32Array(a.momentum.buffer), new Uint32Array(b.momentum.buffer));
});

Deno.test("muon reference: Newton-Schulz brings the singular values near 1, either way round", () => {
  for (const [rows, cols] of [[12, 30], [30, 12]]) {
    const x = newtonSchulz(randomFloats(rows * cols, 5), rows, cols);
    // X X^T (or X^T X) of the smaller side: its diagonal holds squared row norms near 1.
    const [r, c] = rows <= cols ? [rows, cols] : [cols, rows];
    const at = (i: number, j: number) => rows <= cols ? x[i * cols + j] : x[j * cols + i];
    for (let i = 0; i < r; i++) {
      let d = 0;
      for (let j = 0; j < c; j++) d += at(i, j) ** 2;
      assert(d > 0.4 && d < 1.5, `${rows}x${cols}: row ${i} of the short side has norm^2 ${d}`);
    }
    // The transpose of the input gives the transpose of the output (the tall case is the wide
    // one transposed).
    const t = newtonSchulz(transpose(randomFloats(rows * cols, 5), rows, cols), cols, rows);
    assertClose(transpose(t, cols, rows), x, { rtol: 0, atol: 0, label: "transpose" });
  }
});

Deno.test("muon: tensors that do not fit the buffers are rejected, naming them", async () => {
  const gpu = await requestGpu();
  const matmul = await createMatmul(gpu);
  const gradNorm = await createGradNorm(gpu);
  const muon = await createMuon(gpu, { gemm: matmul, gradNorm });
  const x = uploadBuffer(gpu, new Float32Array(256), "x");
  const b = { params: x, grads: x, momentum: x, normScale: x };
  assertThrows(
    () => muon.bind(b, [{ name: "h.0.mlp.c_fc.weight", offset: 64, rows: 16, cols: 16 }], CONFIG),
    RangeError,
    "h.0.mlp.c_fc.weight (16, 16) at 64: past the 256-float buffers",
  );
  assertThrows(
    () => muon.bind(b, [{ name: "w", offset: 3, rows: 4, cols: 4 }], CONFIG),
    RangeError,
    "offset not a multiple",
  );
  x.destroy();
  muon.destroy();
  gradNorm.destroy();
  matmul.destroy();
});

Deno.test("muon in GPT2: the blocks' matrices take Muon steps, everything else AdamW", async () => {
  const gpu = await requestGpu();
  const config = makeConfig({
    numLayers: 2,
    numHeads: 2,
    channels: 32,
    maxSeqLen: 16,
    vocabSize: 101,
  });
  const layout = paramLayout(config);
  const [B, T, lr, muonLr] = [2, 8, 3e-3, 0.02];
  const adamwConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
  const model = await GPT2.create(gpu, config, { B, T });
  try {
    const params = initParams(layout, 3);
    model.upload("params", params);
    await model.setOptimizer({ ...adamwConfig, gradClip: 1, optimizer: "muon" });
    model.zeroGrads();
    const tokens = Uint32Array.from({ length: B * T + 1 }, (_, i) => (i * 37) % 101);
    model.uploadBatch(tokens.slice(0, B * T), tokens.slice(1));
    model.step();
    const grads = await model.download("grads");
    model.optimizerStep(1, lr, muonLr);
    const [got, m, v] = [
      await model.download("params"),
      await model.download("m"),
      await model.download("v"),
    ];
    const want = {
      params: params.slice(),
      m: new Float32Array(layout.totalFloats),
      v: new Float32Array(layout.totalFloats),
    };
    const { scale } = gradNormAndScale(grads, layout.totalFloats, 1);
    const muonNames = new Set(
      layout.layers.flatMap((l) => [l.qkvw, l.attprojw, l.fcw, l.fcprojw]).map((t) => t.name),
    );
    for (const t of layout.tensors) {
      if (muonNames.has(t.name)) {
        muonStep(want.params, grads, want.m, {
          offset: t.offset,
          rows: t.shape[0],
          cols: t.shape[1],
        }, {
          lr: muonLr,
          gradScale: scale,
          config: { momentum: 0.95, weightDecay: adamwConfig.weightDecay },
        });
      } else {
        adamwStep(want.params, grads, want.m, want.v, t.offset, t.offset + t.size, {
          t: 1,
          lr,
          decay: t.decay,
          gradScale: scale,
          config: adamwConfig,
        });
      }
    }
    assertClose(got, want.params, { rtol: 1e-5, atol: 1e-6, label: "params" });
    assertClose(m, want.m, { rtol: 1e-5, atol: 1e-9, label: "m (Muon's momentum in its tensors)" });
    // Muon keeps no second moment: v stays zero in its tensors, so checkpoints keep their format.
    assertClose(v, want.v, { rtol: 1e-5, atol: 1e-12, label: "v" });
    const fc = layout.get("h.1.mlp.c_fc.weight");
    assert(v.subarray(fc.offset, fc.offset + fc.size).every((x) => x === 0));
    assert(m.subarray(fc.offset, fc.offset + fc.size).some((x) => x !== 0));
  } finally {
    model.destroy();
  }
});

Deno.test("muon: its learning rate follows AdamW's warmup and cosine, scaled", () => {
  const adamw = { maxLr: 3e-3, minLr: 3e-4, warmupSteps: 20, maxSteps: 300 };
  const muon = scaledSchedule(adamw, 0.02);
  assertEquals([muon.maxLr, muon.warmupSteps, muon.maxSteps], [0.02, 20, 300]);
  for (const step of [0, 10, 19, 20, 150, 299, 300]) {
    assertClose([learningRate(step, muon)], [learningRate(step, adamw) * 0.02 / 3e-3], {
      rtol: 1e-12,
      atol: 0,
      label: `step ${step}`,
    });
  }
  assertEquals(scaledSchedule({ ...adamw, maxLr: 0, minLr: 0 }, 0.02).minLr, 0);
});

function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j];
  return t;
}

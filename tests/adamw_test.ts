import { assertClose, assertEquals, assertThrows } from "./_assert.ts";
import { randomFloats } from "./_random.ts";
import { requestGpu, withErrorScope } from "../src/gpu/device.ts";
import { readF32, uploadBuffer, writeBuffer } from "../src/gpu/buffer.ts";
import { submit } from "../src/gpu/kernel.ts";
import { readStorage, roundToBf16 } from "../src/gpu/storage.ts";
import { type AdamWConfig, type AdamWSegment, createAdamW } from "../src/optim/adamw.ts";
import { createGradNorm } from "../src/optim/grad_norm.ts";
import { adamwStep } from "../src/optim/reference/adamw.ts";
import { gradNormAndScale } from "../src/optim/reference/grad_norm.ts";

// The GPU and the f32 reference follow the same op sequence; they differ by the rounding of
// sqrt and division (WGSL allows 2.5 ulp) and possible fused multiply-adds, and the clip scale
// by the f32-vs-f64 norm. After 5 steps: 1e-6 relative + 1e-8 absolute on params, m and v (measured: 2 ulp).

const CONFIG: AdamWConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.125 };

Deno.test("adamw: 5 clipped steps over segments in fake-small bindings match torch's formula", async () => {
  const gpu = await requestGpu();
  const n = 1_000;
  // Decay on [0, 613), none on [613, 1000): the boundary is not binding-aligned.
  const segments: AdamWSegment[] = [
    { start: 0, end: 613, decay: true },
    { start: 613, end: n, decay: false },
  ];
  const adamw = await createAdamW(gpu, { maxBinding: 1_024 }); // 256 floats per binding
  const gradNorm = await createGradNorm(gpu, { maxBinding: 1_024 });
  const p0 = randomFloats(n, 1, 0.5),
    want = { params: p0.slice(), m: new Float32Array(n), v: new Float32Array(n) };
  const buf = {
    params: uploadBuffer(gpu, p0, "params"),
    grads: uploadBuffer(gpu, new Float32Array(n), "grads"),
    m: uploadBuffer(gpu, new Float32Array(n), "m"),
    v: uploadBuffer(gpu, new Float32Array(n), "v"),
    normScale: uploadBuffer(gpu, new Float32Array(4), "norm and scale"),
  };
  const clip = 1.0;
  const step = adamw.bind(buf, segments, CONFIG);
  const dispatches = [
    ...gradNorm.bind({ grads: buf.grads, result: buf.normScale }, { n, clip }),
    ...step.dispatches,
  ];
  for (let t = 1; t <= 5; t++) {
    const lr = 1e-2 * t / 5;
    const g = randomFloats(n, 100 + t, t === 3 ? 0.005 : 0.5); // step 3 is under the clip threshold
    writeBuffer(gpu, buf.grads, g);
    step.setStep(t, lr);
    await withErrorScope(gpu, "adamw", () => submit(gpu, dispatches));
    const { scale } = gradNormAndScale(g, n, clip);
    for (const s of segments) {
      adamwStep(want.params, g, want.m, want.v, s.start, s.end, {
        t,
        lr,
        decay: s.decay,
        gradScale: scale,
        config: CONFIG,
      });
    }
  }
  const tol = { rtol: 1e-6, atol: 1e-8 };
  assertClose((await readF32(gpu, buf.params)).slice(0, n), want.params, {
    ...tol,
    label: "params",
  });
  assertClose((await readF32(gpu, buf.m)).slice(0, n), want.m, { ...tol, label: "m" });
  assertClose((await readF32(gpu, buf.v)).slice(0, n), want.v, { ...tol, label: "v" });
  for (const b of Object.values(buf)) b.destroy();
  for (const d of dispatches) d.destroy();
  gradNorm.destroy();
});

Deno.test("adamw: bad segments and steps are rejected with the reason", async () => {
  const gpu = await requestGpu();
  const adamw = await createAdamW(gpu);
  const x = uploadBuffer(gpu, new Float32Array(64), "x");
  const b = { params: x, grads: x, m: x, v: x, normScale: x };
  assertThrows(
    () => adamw.bind(b, [{ start: 0, end: 65, decay: true }], CONFIG),
    RangeError,
    "past",
  );
  assertThrows(
    () =>
      adamw.bind(
        b,
        [{ start: 0, end: 40, decay: true }, { start: 30, end: 64, decay: false }],
        CONFIG,
      ),
    RangeError,
    "overlap",
  );
  const [p, g, m, v] = [1, 2, 3, 4].map(() => uploadBuffer(gpu, new Float32Array(64), "flat"));
  const step = adamw.bind({ params: p, grads: g, m, v, normScale: x }, [
    { start: 0, end: 64, decay: true },
  ], CONFIG);
  assertThrows(() => step.setStep(0, 1e-3), RangeError, "step must be an integer >= 1");
  assertThrows(() => step.setStep(1, NaN), RangeError, "lr must be finite");
  for (const buffer of [x, p, g, m, v]) buffer.destroy();
  for (const d of step.dispatches) d.destroy();
});

// A bf16 model's working copy: the step with a copy binding writes the same f32 parameters as
// without, and the copy holds exactly those parameters rounded to nearest even bf16.
Deno.test("adamw: the bf16 working copy is the updated master weights rounded", async () => {
  const gpu = await requestGpu();
  const n = 1_001;
  const segments: AdamWSegment[] = [
    { start: 0, end: 613, decay: true },
    { start: 613, end: n, decay: false },
  ];
  const adamw = await createAdamW(gpu, { maxBinding: 1_024 });
  const p0 = randomFloats(n, 1, 0.5), g = randomFloats(n, 2, 0.1);
  const run = async (withCopy: boolean) => {
    const buf = {
      params: uploadBuffer(gpu, p0, "params"),
      grads: uploadBuffer(gpu, g, "grads"),
      m: uploadBuffer(gpu, new Float32Array(n), "m"),
      v: uploadBuffer(gpu, new Float32Array(n), "v"),
      normScale: uploadBuffer(gpu, new Float32Array([0, 1, 0, 0]), "norm and scale"),
      copy: uploadBuffer(gpu, new Uint16Array(n + 1), "bf16 copy"),
    };
    const initial = adamw.copy(buf, n);
    await withErrorScope(gpu, "adamw copy", () => submit(gpu, initial));
    const copied = await readStorage(gpu, "bf16", buf.copy, n);
    const step = adamw.bind(withCopy ? buf : { ...buf, copy: undefined }, segments, CONFIG);
    step.setStep(1, 1e-2);
    await withErrorScope(gpu, "adamw step", () => submit(gpu, step.dispatches));
    const out = {
      copied,
      params: (await readF32(gpu, buf.params)).slice(0, n),
      copy: await readStorage(gpu, "bf16", buf.copy, n),
    };
    for (const d of [...initial, ...step.dispatches]) d.destroy();
    for (const b of Object.values(buf)) b.destroy();
    return out;
  };
  const plain = await run(false), copied = await run(true);
  assertEquals(copied.copied, roundToBf16(p0));
  assertEquals(copied.params, plain.params);
  assertEquals(copied.copy, roundToBf16(plain.params));
});

import { assert, assertClose, assertEquals } from "./_assert.ts";
import { randomFloats } from "./_random.ts";
import { requestGpu, withErrorScope } from "../src/gpu/device.ts";
import { readF32, uploadBuffer } from "../src/gpu/buffer.ts";
import { readStorage, roundTo, type StorageType, uploadStorage } from "../src/gpu/storage.ts";
import { submit } from "../src/gpu/kernel.ts";
import { createLayerNorm } from "../src/model/layernorm.ts";
import { layernormBackward, layernormForward } from "../src/model/reference/layernorm.ts";

// Tolerances (f32 GPU vs f64-accumulating reference): mean and rstd 1e-5 relative + 1e-6
// absolute; out 1e-5 relative + 1e-5 absolute (inputs sit at 3 +- 1, so x - mean carries
// ulp(3) = 2.4e-7 of rounding, times rstd * weight ~ 3.5); backward (a row-wide reduction feeding every element, and
// parameter gradients summed over all rows) 1e-4 relative + 1e-5 absolute.
// bf16 storage: the reference gets the same bf16-rounded inputs and everything is computed in
// f32, so out and dinp are the reference's values rounded once to bf16: within 2^-9 relative,
// stated as 2^-8 relative plus the f32 tolerances; mean, rstd and dweight, dbias stay f32.
// f16 storage likewise, rounded once to 11 bits: 2^-11 relative, stated as 2^-10.

async function runLayerNorm(
  N: number,
  C: number,
  withBias: boolean,
  rowThreads?: number,
  type: StorageType = "f32",
  inputType: StorageType = type,
  subgroups?: boolean,
) {
  const gpu = await requestGpu();
  const op = await createLayerNorm(gpu, { rowThreads, type, inputType, subgroups });
  const stored = (x: Float32Array<ArrayBuffer>) => roundTo(type, x);
  const x = roundTo(inputType, randomFloats(N * C, 1, 1, 3)), w = stored(randomFloats(C, 2, 1, 1));
  const bias = stored(randomFloats(C, 3));
  const dy = stored(randomFloats(N * C, 4)),
    dx0 = stored(randomFloats(N * C, 5)),
    dw0 = randomFloats(C, 6),
    db0 = randomFloats(C, 7);
  const up = (data: Float32Array, label: string) => uploadStorage(gpu, type, data, label);
  const buf = {
    out: up(new Float32Array(N * C), "out"),
    mean: uploadBuffer(gpu, new Float32Array(N), "mean"),
    rstd: uploadBuffer(gpu, new Float32Array(N), "rstd"),
    inp: uploadStorage(gpu, inputType, x, "inp"),
    weight: up(w, "weight"),
    bias: up(bias, "bias"),
    dout: up(dy, "dout"),
    dinp: up(dx0, "dinp"),
    dweight: uploadBuffer(gpu, dw0, "dweight"),
    dbias: uploadBuffer(gpu, db0, "dbias"),
  };
  const dispatches = [
    ...op.forward({ ...buf, bias: withBias ? buf.bias : null }, { N, C }),
    ...op.backward({ ...buf, dbias: withBias ? buf.dbias : null }, { N, C }),
  ];
  await withErrorScope(gpu, "layernorm", () => submit(gpu, dispatches));
  const got = {
    out: await readStorage(gpu, type, buf.out, N * C),
    mean: (await readF32(gpu, buf.mean)).slice(0, N),
    rstd: (await readF32(gpu, buf.rstd)).slice(0, N),
    dinp: await readStorage(gpu, type, buf.dinp, N * C),
    dweight: (await readF32(gpu, buf.dweight)).slice(0, C),
    dbias: (await readF32(gpu, buf.dbias)).slice(0, C),
  };
  for (const b of Object.values(buf)) b.destroy();
  for (const d of dispatches) d.destroy();
  op.destroy();
  const b = withBias ? bias : null;
  const want = {
    out: new Float32Array(N * C),
    mean: new Float32Array(N),
    rstd: new Float32Array(N),
    dinp: dx0.slice(),
    dweight: dw0.slice(),
    dbias: db0.slice(),
  };
  layernormForward(want.out, want.mean, want.rstd, x, w, b, N, C);
  layernormBackward(
    want.dinp,
    want.dweight,
    withBias ? want.dbias : null,
    dy,
    x,
    w,
    want.mean,
    want.rstd,
    N,
    C,
  );
  return { got, want };
}

// rowThreads: the adapter's default (32 here), the GPU default 128, and 1 (no tree).
for (
  const [N, C, withBias, rowThreads] of [
    [2 * 5, 13, true, undefined],
    [2 * 5, 13, false, undefined],
    [70, 200, true, undefined],
    [70, 200, false, 128],
    [7, 33, true, 1],
  ] as const
) {
  const name = `N=${N} C=${C} ${withBias ? "with" : "without"} bias, rowThreads ${
    rowThreads ?? "default"
  }`;
  Deno.test(`layernorm: ${name}`, async () => {
    const { got, want } = await runLayerNorm(N, C, withBias, rowThreads);
    const fwd = { rtol: 1e-5, atol: 1e-6 }, bwd = { rtol: 1e-4, atol: 1e-5 };
    assertClose(got.out, want.out, { rtol: 1e-5, atol: 1e-5, label: "out" });
    assertClose(got.mean, want.mean, { ...fwd, label: "mean" });
    assertClose(got.rstd, want.rstd, { ...fwd, label: "rstd" });
    assertClose(got.dinp, want.dinp, { ...bwd, label: "dinp" });
    assertClose(got.dweight, want.dweight, { ...bwd, label: "dweight" });
    // Without bias, dbias is not bound and keeps its initial values.
    assertClose(got.dbias, want.dbias, { ...bwd, label: "dbias" });
  });
}

for (const [type, rtol] of [["bf16", 2 ** -8], ["f16", 2 ** -10]] as const) {
  for (const withBias of [true, false]) {
    Deno.test(`layernorm: ${type} storage, N=70 C=200 ${withBias ? "with" : "without"} bias`, async () => {
      const { got, want } = await runLayerNorm(70, 200, withBias, undefined, type);
      const fwd = { rtol: 1e-5, atol: 1e-6 }, bwd = { rtol: 1e-4, atol: 1e-5 };
      assertClose(got.out, want.out, { rtol, atol: 1e-5, label: "out" });
      assertClose(got.mean, want.mean, { ...fwd, label: "mean" });
      assertClose(got.rstd, want.rstd, { ...fwd, label: "rstd" });
      assertClose(got.dinp, want.dinp, { rtol, atol: 1e-5, label: "dinp" });
      assertClose(got.dweight, want.dweight, { ...bwd, label: "dweight" });
      assertClose(got.dbias, want.dbias, { ...bwd, label: "dbias" });
    });
  }
}

// An f16 model's layernorms read the f32 residual stream: statistics from the unrounded input
// (f32 tolerances), out and dinp rounded once to f16 (2^-10 as above).
Deno.test("layernorm: f16 storage with an f32 input (the residual stream)", async () => {
  const { got, want } = await runLayerNorm(70, 200, true, undefined, "f16", "f32");
  const fwd = { rtol: 1e-5, atol: 1e-6 }, bwd = { rtol: 1e-4, atol: 1e-5 };
  assertClose(got.out, want.out, { rtol: 2 ** -10, atol: 1e-5, label: "out" });
  assertClose(got.mean, want.mean, { ...fwd, label: "mean" });
  assertClose(got.rstd, want.rstd, { ...fwd, label: "rstd" });
  assertClose(got.dinp, want.dinp, { rtol: 2 ** -10, atol: 1e-5, label: "dinp" });
  assertClose(got.dweight, want.dweight, { ...bwd, label: "dweight" });
  assertClose(got.dbias, want.dbias, { ...bwd, label: "dbias" });
});

Deno.test("layernorm: repeat runs are bit-identical", async () => {
  const first = await runLayerNorm(70, 200, true);
  const second = await runLayerNorm(70, 200, true);
  assertEquals(second.got, first.got);
});

// The subgroup path (lavapipe's subgroups hold 8 invocations) and the workgroup-memory path
// sum in the same tree: same bits, and both match the reference, at odd row and channel counts
// (C = 37, 70: rows shorter and longer than the workgroup) for every workgroup size, from 1
// (no tree) to 256 (several rounds of subgroup partials), and every storage type.
Deno.test("layernorm: with and without subgroups, bit-identical and at the reference", async (t) => {
  const gpu = await requestGpu();
  assert(gpu.hasSubgroups, `the device "${gpu.name}" lacks subgroups: one path untested`);
  const cases = [
    [13, 37, true, 1, "f32"],
    [13, 37, false, 8, "f32"],
    [9, 70, true, 32, "f32"],
    [9, 70, true, 128, "bf16"],
    [5, 37, false, 256, "f16"],
  ] as const;
  for (const [N, C, withBias, rowThreads, type] of cases) {
    await t.step(`N=${N} C=${C} rowThreads ${rowThreads} ${type}`, async () => {
      const run = (sg: boolean) => runLayerNorm(N, C, withBias, rowThreads, type, type, sg);
      const [sub, mem] = [await run(true), await run(false)];
      assertEquals(sub.got, mem.got);
      const rtol = type === "f32" ? 1e-5 : 2 ** -8;
      const bwd = { rtol: 1e-4, atol: 1e-5 };
      assertClose(sub.got.out, sub.want.out, { rtol, atol: 1e-5, label: "out" });
      assertClose(sub.got.mean, sub.want.mean, { rtol: 1e-5, atol: 1e-6, label: "mean" });
      assertClose(sub.got.rstd, sub.want.rstd, { rtol: 1e-5, atol: 1e-6, label: "rstd" });
      assertClose(sub.got.dinp, sub.want.dinp, { rtol: Math.max(rtol, 1e-4), atol: 1e-5 });
      assertClose(sub.got.dweight, sub.want.dweight, { ...bwd, label: "dweight" });
      assertClose(sub.got.dbias, sub.want.dbias, { ...bwd, label: "dbias" });
    });
  }
});

import { assertClose, assertEquals } from "./_assert.ts";
import { randomFloats } from "./_random.ts";
import { requestGpu, withErrorScope } from "../src/gpu/device.ts";
import { readF32, uploadBuffer } from "../src/gpu/buffer.ts";
import { submit } from "../src/gpu/kernel.ts";
import { createLayerNorm } from "../src/model/layernorm.ts";
import { layernormBackward, layernormForward } from "../src/model/reference/layernorm.ts";

// Tolerances (f32 GPU vs f64-accumulating reference): mean and rstd 1e-5 relative + 1e-6
// absolute; out 1e-5 relative + 1e-5 absolute (inputs sit at 3 +- 1, so x - mean carries
// ulp(3) = 2.4e-7 of rounding, times rstd * weight ~ 3.5); backward (a row-wide reduction feeding every element, and
// parameter gradients summed over all rows) 1e-4 relative + 1e-5 absolute.

async function runLayerNorm(N: number, C: number, withBias: boolean, rowThreads?: number) {
  const gpu = await requestGpu();
  const op = await createLayerNorm(gpu, { rowThreads });
  const x = randomFloats(N * C, 1, 1, 3), w = randomFloats(C, 2, 1, 1), bias = randomFloats(C, 3);
  const dy = randomFloats(N * C, 4),
    dx0 = randomFloats(N * C, 5),
    dw0 = randomFloats(C, 6),
    db0 = randomFloats(C, 7);
  const buf = {
    out: uploadBuffer(gpu, new Float32Array(N * C), "out"),
    mean: uploadBuffer(gpu, new Float32Array(N), "mean"),
    rstd: uploadBuffer(gpu, new Float32Array(N), "rstd"),
    inp: uploadBuffer(gpu, x, "inp"),
    weight: uploadBuffer(gpu, w, "weight"),
    bias: uploadBuffer(gpu, bias, "bias"),
    dout: uploadBuffer(gpu, dy, "dout"),
    dinp: uploadBuffer(gpu, dx0, "dinp"),
    dweight: uploadBuffer(gpu, dw0, "dweight"),
    dbias: uploadBuffer(gpu, db0, "dbias"),
  };
  const dispatches = [
    ...op.forward({ ...buf, bias: withBias ? buf.bias : null }, { N, C }),
    ...op.backward({ ...buf, dbias: withBias ? buf.dbias : null }, { N, C }),
  ];
  await withErrorScope(gpu, "layernorm", () => submit(gpu, dispatches));
  const got = {
    out: (await readF32(gpu, buf.out)).slice(0, N * C),
    mean: (await readF32(gpu, buf.mean)).slice(0, N),
    rstd: (await readF32(gpu, buf.rstd)).slice(0, N),
    dinp: (await readF32(gpu, buf.dinp)).slice(0, N * C),
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

Deno.test("layernorm: repeat runs are bit-identical", async () => {
  const first = await runLayerNorm(70, 200, true);
  const second = await runLayerNorm(70, 200, true);
  assertEquals(second.got, first.got);
});

import { assertClose, assertEquals } from "./_assert.ts";
import { requestGpu, withErrorScope } from "../src/gpu/device.ts";
import { submit } from "../src/gpu/kernel.ts";
import { readStorage, roundTo, type StorageType, uploadStorage } from "../src/gpu/storage.ts";
import { createResidual } from "../src/model/residual.ts";
import { residualBackward, residualForward } from "../src/model/reference/residual.ts";

// f32: one f32 add per element on both sides, so the GPU must match the reference bit for bit.
// bf16, f16: the reference gets the same rounded inputs and computes in f32; the GPU rounds each
// sum once, so it must equal the reference's result rounded to the type, bit for bit too.

function ramp(n: number, scale: number, shift: number): Float32Array<ArrayBuffer> {
  return new Float32Array(n).map((_, i) => Math.sin(i * scale + shift) * (1 + (i % 13)));
}

async function check(n: number, type: StorageType = "f32") {
  const gpu = await requestGpu();
  const op = await createResidual(gpu, type);
  const stored = (x: Float32Array<ArrayBuffer>) => roundTo(type, x);
  const a = stored(ramp(n, 0.37, 0)), b = stored(ramp(n, 0.11, 1));
  const dy = stored(ramp(n, 0.53, 2));
  const da0 = stored(ramp(n, 0.71, 3)), db0 = stored(ramp(n, 0.29, 4));
  const up = (x: Float32Array, label: string) => uploadStorage(gpu, type, x, label);
  const bufs = {
    out: up(new Float32Array(n), "out"),
    a: up(a, "a"),
    b: up(b, "b"),
    da: up(da0, "da"),
    db: up(db0, "db"),
    dout: up(dy, "dout"),
  };
  const dispatches = [
    ...op.forward({ out: bufs.out, a: bufs.a, b: bufs.b }, { n }),
    ...op.backward({ da: bufs.da, db: bufs.db, dout: bufs.dout }, { n }),
  ];
  await withErrorScope(gpu, "residual", () => submit(gpu, dispatches));
  const out = new Float32Array(n), da = da0.slice(), db = db0.slice();
  residualForward(out, a, b, n);
  residualBackward(da, db, dy, n);
  const read = (buf: GPUBuffer) => readStorage(gpu, type, buf, n);
  assertEquals(await read(bufs.out), stored(out));
  assertEquals(await read(bufs.da), stored(da));
  assertEquals(await read(bufs.db), stored(db));
  // The stated tolerance of a store: half a unit in the last of its 8 (bf16) or 11 (f16)
  // significant bits.
  if (type !== "f32") {
    assertClose(await read(bufs.out), out, { rtol: type === "bf16" ? 2 ** -8 : 2 ** -11, atol: 0 });
  }
  for (const buf of Object.values(bufs)) buf.destroy();
  for (const d of dispatches) d.destroy();
}

Deno.test("residual: forward and backward match the reference on an odd size", () =>
  check(2 * 5 * 13 + 1));

Deno.test("residual: over 65,535 workgroups (2-D grid) every element is covered", () =>
  check(65_535 * 128 + 4_097));

for (const type of ["bf16", "f16"] as const) {
  Deno.test(`residual: ${type} storage equals the reference rounded to ${type}, odd size`, () =>
    check(2 * 5 * 13 + 1, type));
}

// An f16 model's residual stream is f32: out = a (f32) + b (the f16 branch output) is one f32
// add of the same values as the reference, so bit-identical, and not rounded to f16.
Deno.test("residual: an f32 stream plus an f16 branch is the f32 sum, bit for bit", async () => {
  const gpu = await requestGpu();
  const op = await createResidual(gpu, "f16", "f32");
  const n = 2 * 5 * 13 + 1;
  const a = ramp(n, 0.37, 0).map((x) => x * (1 + 2 ** -20)), b = roundTo("f16", ramp(n, 0.11, 1));
  const bufs = {
    out: uploadStorage(gpu, "f32", new Float32Array(n), "out"),
    a: uploadStorage(gpu, "f32", a, "a"),
    b: uploadStorage(gpu, "f16", b, "b"),
  };
  const dispatches = op.forward(bufs, { n });
  await withErrorScope(gpu, "residual f32 stream", () => submit(gpu, dispatches));
  const out = new Float32Array(n);
  residualForward(out, a, b, n);
  const got = await readStorage(gpu, "f32", bufs.out, n);
  assertEquals(got, out);
  assertEquals(got.some((x, i) => x !== roundTo("f16", [out[i]])[0]), true);
  for (const buf of Object.values(bufs)) buf.destroy();
  for (const d of dispatches) d.destroy();
});

import { assertEquals } from "./_assert.ts";
import { requestGpu, withErrorScope } from "../src/gpu/device.ts";
import { readF32, uploadBuffer } from "../src/gpu/buffer.ts";
import { submit } from "../src/gpu/kernel.ts";
import { createResidual } from "../src/model/residual.ts";
import { residualBackward, residualForward } from "../src/model/reference/residual.ts";

// One f32 add per element on both sides: the GPU must match the reference bit for bit.

function ramp(n: number, scale: number, shift: number): Float32Array<ArrayBuffer> {
  return new Float32Array(n).map((_, i) => Math.sin(i * scale + shift) * (1 + (i % 13)));
}

async function check(n: number) {
  const gpu = await requestGpu();
  const op = await createResidual(gpu);
  const a = ramp(n, 0.37, 0), b = ramp(n, 0.11, 1), dy = ramp(n, 0.53, 2);
  const da0 = ramp(n, 0.71, 3), db0 = ramp(n, 0.29, 4);
  const bufs = {
    out: uploadBuffer(gpu, new Float32Array(n), "out"),
    a: uploadBuffer(gpu, a, "a"),
    b: uploadBuffer(gpu, b, "b"),
    da: uploadBuffer(gpu, da0, "da"),
    db: uploadBuffer(gpu, db0, "db"),
    dout: uploadBuffer(gpu, dy, "dout"),
  };
  const dispatches = [
    ...op.forward({ out: bufs.out, a: bufs.a, b: bufs.b }, { n }),
    ...op.backward({ da: bufs.da, db: bufs.db, dout: bufs.dout }, { n }),
  ];
  await withErrorScope(gpu, "residual", () => submit(gpu, dispatches));
  const out = new Float32Array(n), da = da0.slice(), db = db0.slice();
  residualForward(out, a, b, n);
  residualBackward(da, db, dy, n);
  assertEquals((await readF32(gpu, bufs.out)).slice(0, n), out);
  assertEquals((await readF32(gpu, bufs.da)).slice(0, n), da);
  assertEquals((await readF32(gpu, bufs.db)).slice(0, n), db);
  for (const buf of Object.values(bufs)) buf.destroy();
  for (const d of dispatches) d.destroy();
}

Deno.test("residual: forward and backward match the reference on an odd size", () =>
  check(2 * 5 * 13));

Deno.test("residual: over 65,535 workgroups (2-D grid) every element is covered", () =>
  check(65_535 * 64 + 4_097));

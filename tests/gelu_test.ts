import { assert, assertClose, assertEquals } from "./_assert.ts";
import { uniform } from "./_random.ts";
import { requestGpu, withErrorScope } from "../src/gpu/device.ts";
import { readF32, uploadBuffer } from "../src/gpu/buffer.ts";
import { submit } from "../src/gpu/kernel.ts";
import { createGelu, type GeluForm } from "../src/model/gelu.ts";
import { erfc, geluBackward, geluForward } from "../src/model/reference/gelu.ts";

// Tolerances: the kernel's Phi is within ~5e-7 relative (f32 evaluation of a 9e-8 fit), the
// tanh form within a few ulp; 2e-6 relative plus 1e-12 absolute (for outputs near 0) covers both.
// The backward crosses zero near x = -0.75, where only the absolute error is meaningful.
const RTOL = 2e-6;
const ATOL = 1e-12;

/** Deterministic inputs: a sweep over [-16, 16] (both tails) and Gaussian-ish values. */
function inputs(n: number): Float32Array<ArrayBuffer> {
  const x = new Float32Array(n);
  const rand = uniform(12345);
  for (let i = 0; i < n; i++) {
    x[i] = i % 2 === 0 ? -16 + 32 * i / n : (rand() + rand() + rand() - 1.5) * 4;
  }
  x.set([0, -0, 1e-30, -1e-30, 40, -40, -0.7518, 1], 0);
  return x;
}

Deno.test("gelu reference: erfc anchors", () => {
  assertClose([erfc(0.5), erfc(2), erfc(3), erfc(6), erfc(-1)], [
    0.4795001221869535,
    0.004677734981047266,
    2.209049699858544e-5,
    2.151973671249892e-17,
    1.842700792949715,
  ], { rtol: 1e-13, atol: 0 });
});

for (const form of ["erf", "tanh"] as GeluForm[]) {
  Deno.test(`gelu ${form}: forward and backward match the CPU reference`, async () => {
    const gpu = await requestGpu();
    const op = await createGelu(gpu, form);
    const n = 4099;
    const x = inputs(n);
    const dy = inputs(n).map((v, i) => (i % 7) - 3 + v * 0.01);
    const inp = uploadBuffer(gpu, x, "inp");
    const out = uploadBuffer(gpu, new Float32Array(n), "out");
    const dout = uploadBuffer(gpu, dy, "dout");
    const dinp = uploadBuffer(gpu, new Float32Array(n).fill(123), "dinp");
    const grad = uploadBuffer(gpu, dy, "grad (in place)");
    const dispatches = [
      ...op.forward({ out, inp }, { n }),
      ...op.backward({ dinp, inp, dout }, { n }),
      ...op.backward({ dinp: grad, inp, dout: grad }, { n }),
    ];
    await withErrorScope(gpu, "gelu", () => submit(gpu, dispatches));
    const wantOut = new Float32Array(n), wantDinp = new Float32Array(n);
    geluForward(wantOut, x, n, form);
    geluBackward(wantDinp, x, dy, n, form);
    const gotOut = (await readF32(gpu, out)).slice(0, n);
    assertClose(gotOut, wantOut, { rtol: RTOL, atol: ATOL, label: `gelu_${form} out` });
    assertClose((await readF32(gpu, dinp)).slice(0, n), wantDinp, {
      rtol: RTOL,
      atol: 1e-6,
      label: `gelu_${form} dinp`,
    });
    // In place is the same arithmetic: bit-identical to the out-of-place result.
    assertEquals(await readF32(gpu, grad), await readF32(gpu, dinp));
    assert(gotOut.every(Number.isFinite), "gelu output has non-finite values");
    for (const b of [inp, out, dout, dinp, grad]) b.destroy();
    for (const d of dispatches) d.destroy();
  });
}

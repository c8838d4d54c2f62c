import { assert, assertClose, assertEquals } from "./_assert.ts";
import { uniform } from "./_random.ts";
import { requestGpu, withErrorScope } from "../src/gpu/device.ts";
import { readStorage, roundTo, uploadStorage } from "../src/gpu/storage.ts";
import { submit } from "../src/gpu/kernel.ts";
import { createGelu, type GeluForm } from "../src/model/gelu.ts";
import { erfc, geluBackward, geluForward } from "../src/model/reference/gelu.ts";

// Tolerances: the kernel's Phi is within ~5e-7 relative (f32 evaluation of a 9e-8 fit), the
// tanh form within a few ulp; 2e-6 relative plus 1e-12 absolute (for outputs near 0) covers both.
// The backward crosses zero near x = -0.75, where only the absolute error is meaningful.
// bf16: the reference gets the same bf16-rounded inputs; each output is rounded to bf16 once, so
// it is within half a unit in the 8th significant bit (2^-9 relative) of the reference, plus the
// f32 error above; 2^-8 relative states that with margin. f16 likewise: half a unit in the 11th
// bit (2^-11), stated as 2^-10; below f16's normal range (6.1e-5, the far negative tail) its
// spacing is 2^-24, so outputs there are within 2^-25 absolute.
const RTOL = 2e-6;
const ATOL = 1e-12;
const STORE_TOL = { bf16: { rtol: 2 ** -8, atol: ATOL }, f16: { rtol: 2 ** -10, atol: 2 ** -25 } };

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

for (
  const [form, type] of [["erf", "f32"], ["tanh", "f32"], ["erf", "bf16"], ["erf", "f16"]] as const
) {
  Deno.test(`gelu ${form} ${type}: forward and backward match the CPU reference`, async () => {
    const gpu = await requestGpu();
    const op = await createGelu(gpu, form, type);
    const n = 4099;
    const stored = (x: Float32Array<ArrayBuffer>) => roundTo(type, x);
    const x = stored(inputs(n));
    const dy = stored(inputs(n).map((v, i) => (i % 7) - 3 + v * 0.01));
    const up = (data: Float32Array, label: string) => uploadStorage(gpu, type, data, label);
    const inp = up(x, "inp");
    const out = up(new Float32Array(n), "out");
    const dout = up(dy, "dout");
    const dinp = up(new Float32Array(n).fill(123), "dinp");
    const grad = up(dy, "grad (in place)");
    const dispatches = [
      ...op.forward({ out, inp }, { n }),
      ...op.backward({ dinp, inp, dout }, { n }),
      ...op.backward({ dinp: grad, inp, dout: grad }, { n }),
    ];
    await withErrorScope(gpu, "gelu", () => submit(gpu, dispatches));
    const wantOut = new Float32Array(n), wantDinp = new Float32Array(n);
    geluForward(wantOut, x, n, form as GeluForm);
    geluBackward(wantDinp, x, dy, n, form as GeluForm);
    const read = (b: GPUBuffer) => readStorage(gpu, type, b, n);
    const { rtol, atol } = type === "f32" ? { rtol: RTOL, atol: ATOL } : STORE_TOL[type];
    const gotOut = await read(out);
    assertClose(gotOut, wantOut, { rtol, atol, label: `gelu_${form} out` });
    assertClose(await read(dinp), wantDinp, { rtol, atol: 1e-6, label: `gelu_${form} dinp` });
    // In place is the same arithmetic: bit-identical to the out-of-place result.
    assertEquals(await read(grad), await read(dinp));
    assert(gotOut.every(Number.isFinite), "gelu output has non-finite values");
    for (const b of [inp, out, dout, dinp, grad]) b.destroy();
    for (const d of dispatches) d.destroy();
  });
}

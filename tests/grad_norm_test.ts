import { assert, assertClose, assertEquals } from "./_assert.ts";
import { uniform } from "./_random.ts";
import { requestGpu, withErrorScope } from "../src/gpu/device.ts";
import { readF32, uploadBuffer } from "../src/gpu/buffer.ts";
import { submit } from "../src/gpu/kernel.ts";
import { createGradNorm } from "../src/optim/grad_norm.ts";
import { gradNormAndScale } from "../src/optim/reference/grad_norm.ts";

// The GPU sums squares in f32 (sequential per thread, then fixed trees); the reference in f64.
// Tolerance 1e-5 relative on the norm and the scale.

/** Uniform in [-0.5, 0.5), every 97th element 30 times larger. */
function grads(n: number, seed: number): Float32Array<ArrayBuffer> {
  const next = uniform(seed);
  return new Float32Array(n).map((_, i) => (next() - 0.5) * (i % 97 === 0 ? 30 : 1));
}

async function gradNorm(
  g: Float32Array<ArrayBuffer>,
  clip: number,
  maxBinding?: number,
  subgroups?: boolean,
) {
  const gpu = await requestGpu();
  const op = await createGradNorm(gpu, { maxBinding, subgroups });
  const buf = uploadBuffer(gpu, g, "grads");
  const result = uploadBuffer(gpu, new Float32Array(4).fill(NaN), "norm and scale");
  const dispatches = op.bind({ grads: buf, result }, { n: g.length, clip });
  await withErrorScope(gpu, "grad norm", () => submit(gpu, dispatches));
  const [norm, scale] = await readF32(gpu, result);
  for (const d of dispatches) d.destroy();
  buf.destroy();
  result.destroy();
  op.destroy();
  return { norm, scale, dispatches: dispatches.length };
}

Deno.test("grad norm: norm and clip scale match the reference", async () => {
  const g = grads(100_003, 1);
  const want = gradNormAndScale(g, g.length, 1.0);
  assert(want.scale < 1, "test data must need clipping");
  const got = await gradNorm(g, 1.0);
  assertClose([got.norm, got.scale], [want.norm, want.scale], { rtol: 1e-5, atol: 0 });
  assertEquals(got.dispatches, 2);
  // Under the clip threshold, and with clipping off, the scale is exactly 1.
  assertEquals((await gradNorm(g, want.norm * 2)).scale, 1);
  assertEquals((await gradNorm(g, 0)).scale, 1);
});

Deno.test("grad norm: a buffer split into binding-sized chunks gives the same norm", async () => {
  const g = grads(50_001, 2);
  const want = gradNormAndScale(g, g.length, 0.5);
  // 4,000-byte fake max binding: chunks of 960 floats, 53 of them.
  const got = await gradNorm(g, 0.5, 4_000);
  assertEquals(got.dispatches, 53 + 1);
  assertClose([got.norm, got.scale], [want.norm, want.scale], { rtol: 1e-5, atol: 0 });
});

Deno.test("grad norm: repeat runs are bit-identical", async () => {
  const g = grads(300_017, 3);
  const first = await gradNorm(g, 1, 256 * 1024);
  const second = await gradNorm(g, 1, 256 * 1024);
  assertEquals(second, first);
});

// Subgroup shuffles (lavapipe's subgroups hold 8 invocations) and workgroup memory sum in the
// same tree: the same bits, at sizes that leave partial workgroups, in one binding and in
// chunks (an odd element offset per chunk).
Deno.test("grad norm: with and without subgroups, bit-identical and at the reference", async () => {
  const gpu = await requestGpu();
  assert(gpu.hasSubgroups, `the device "${gpu.name}" lacks subgroups: one path untested`);
  for (const [n, maxBinding] of [[37, undefined], [100_003, undefined], [50_001, 4_000]]) {
    const g = grads(n!, 4);
    const want = gradNormAndScale(g, g.length, 1.0);
    const sub = await gradNorm(g, 1.0, maxBinding, true);
    const mem = await gradNorm(g, 1.0, maxBinding, false);
    assertEquals(sub, mem, `n=${n}`);
    assertClose([sub.norm, sub.scale], [want.norm, want.scale], { rtol: 1e-5, atol: 0 });
  }
});

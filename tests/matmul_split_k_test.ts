/**
 * Split-K (src/model/matmul_split_k.ts): products over S slices of K summed in slice order,
 * with the adapter's default tiles and with the GPUs' tiled kernels, match the CPU reference at
 * odd shapes (M, N, K not multiples of the tile or of S) for f32,
 * bf16 and f16 storage, with and without accumulation and bias, and give the same bits when
 * run again. Tolerances as in matmul_test.ts: f32 1e-5 relative and absolute; a 16-bit c is
 * the f32 result rounded once (2^-8 relative for bf16, 2^-10 for f16); f16 products add
 * (BK + 1) * 2^-11 * max sum_k |a_k b_k| (the f16 partial sums flushed every BK products).
 */
import { assertClose, assertEquals } from "./_assert.ts";
import { randomFloats } from "./_random.ts";
import { requestGpu, withErrorScope } from "../src/gpu/device.ts";
import { readBuffer } from "../src/gpu/buffer.ts";
import { type Dispatch, submit } from "../src/gpu/kernel.ts";
import { readStorage, roundTo, type StorageType, uploadStorage } from "../src/gpu/storage.ts";
import { createMatmul, type GemmDesc, type GemmTypes } from "../src/model/matmul.ts";
import { MATMUL_VARIANTS, type MatmulTiles } from "../src/model/matmul_tiles.ts";

const [M, N, K] = [37, 45, 61];
const TOL = { f32: 1e-5, bf16: 2 ** -8 + 1e-5, f16: 2 ** -10 + 1e-5 };

/** c (M, N) [+]= op(a) @ op(b) [+ bias] in f64, rounded to c's storage. */
function reference(
  d: Pick<GemmDesc, "aLayout" | "bLayout" | "accumulate">,
  a: Float32Array,
  b: Float32Array,
  bias: Float32Array | null,
  c0: Float32Array,
  abs = false,
): Float32Array {
  const out = new Float32Array(M * N);
  const f = abs ? Math.abs : (x: number) => x;
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let sum = bias && !abs ? bias[n] : 0;
      for (let k = 0; k < K; k++) {
        const av = d.aLayout === "km" ? a[k * M + m] : a[m * K + k];
        const bv = d.bLayout === "nk" ? b[n * K + k] : b[k * N + n];
        sum += f(av) * f(bv);
      }
      out[m * N + n] = (d.accumulate && !abs ? c0[m * N + n] : 0) + sum;
    }
  }
  return out;
}

/** The products the model makes: forward (c = type, bias), dinp (+=), dweight (f32 +=). */
function products(type: StorageType) {
  return [
    { aLayout: "mk", bLayout: "nk", accumulate: false, bias: true, c: type },
    { aLayout: "mk", bLayout: "kn", accumulate: true, bias: false, c: type },
    { aLayout: "km", bLayout: "kn", accumulate: true, bias: false, c: "f32" },
  ] as const;
}

for (const type of ["f32", "bf16", "f16"] as const) {
  Deno.test(`matmul split-K ${type} ${M}x${N}x${K}: S = 2, 3, 7 match the reference, repeat bit for bit`, async (t) => {
    const gpu = await requestGpu();
    const stored = (x: Float32Array) => roundTo(type, x);
    const a = stored(randomFloats(M * K, 1)), b = stored(randomFloats(K * N, 2));
    const bias = stored(randomFloats(N, 3));
    // The adapter's default tiles at three slice counts, and the GPUs' tiled kernels at one.
    const runs: { S: number; tiles?: MatmulTiles; name: string }[] = [
      ...[2, 3, 7].map((S) => ({ S, name: "" })),
      { S: 3, tiles: MATMUL_VARIANTS.tiled_64_bk16, name: " tiled_64_bk16" },
    ];
    for (const { S, tiles, name } of runs) {
      const op = await createMatmul(gpu, { type, splitK: S, tiles });
      for (const p of products(type)) {
        await t.step(
          `S=${S}${name} ${p.aLayout}@${p.bLayout} c ${p.c}${p.accumulate ? " +=" : ""}`,
          async () => {
            const c0 = roundTo(p.c, randomFloats(M * N, 4));
            const types: GemmTypes = { a: type, b: type, c: p.c };
            const buffers = {
              a: uploadStorage(gpu, type, a, "a"),
              b: uploadStorage(gpu, type, b, "b"),
              bias: uploadStorage(gpu, type, bias, "bias"),
              c: uploadStorage(gpu, p.c, c0, "c"),
            };
            const desc: GemmDesc = {
              ...buffers,
              bias: p.bias ? buffers.bias : null,
              M,
              N,
              K,
              aLayout: p.aLayout,
              bLayout: p.bLayout,
              accumulate: p.accumulate,
              types,
            };
            const dispatches = op.gemm(desc);
            // One product over S slices (grid z) and one sum.
            const labels = dispatches.map((d: Dispatch) => d.kernel.label);
            assertEquals(labels.length, 2, labels.join());
            assertEquals(dispatches[0].workgroups[2], S);
            assertEquals(labels[1].startsWith("matmul split_k_sum"), true, labels[1]);
            await withErrorScope(gpu, "split-K", () => submit(gpu, dispatches));
            const got = await readStorage(gpu, p.c, buffers.c, M * N);
            const products = op.f16Products
              ? (op.tiles.BK + 1) * 2 ** -11 *
                reference(desc, a, b, null, c0, true).reduce((x, v) => Math.max(x, v), 0)
              : 0;
            const rtol = TOL[p.c === "f32" ? "f32" : type];
            const want = reference(desc, a, b, p.bias ? bias : null, c0);
            assertClose(got, want, { rtol, atol: 1e-5 + products, label: "c" });
            // The same product again, from the same c: the same bits.
            const first = new Uint8Array(await readBuffer(gpu, buffers.c));
            await uploadAgain(gpu, p.c, buffers.c, c0);
            await withErrorScope(gpu, "split-K again", () => submit(gpu, dispatches));
            assertEquals(new Uint8Array(await readBuffer(gpu, buffers.c)), first);
            for (const d of dispatches) d.destroy();
            for (const x of Object.values(buffers)) x.destroy();
          },
        );
      }
      op.destroy();
    }
  });
}

async function uploadAgain(
  gpu: Awaited<ReturnType<typeof requestGpu>>,
  type: StorageType,
  target: GPUBuffer,
  x: Float32Array,
) {
  const fresh = uploadStorage(gpu, type, x, "c again");
  const encoder = gpu.device.createCommandEncoder();
  encoder.copyBufferToBuffer(fresh, 0, target, 0, fresh.size);
  gpu.device.queue.submit([encoder.finish()]);
  await gpu.device.queue.onSubmittedWorkDone();
  fresh.destroy();
}

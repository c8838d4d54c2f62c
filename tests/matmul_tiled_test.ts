/**
 * The workgroup-memory matmul (matmul_tiled, and matmul_tiled4 with 16-byte loads) of every
 * "tiled" variant, for every layout (mk@nk, mk@kn, km@kn, km@nk) and storage type, against
 * the CPU reference (src/model/reference/matmul.ts, operands transposed to (M, K) and (N, K)
 * on the CPU), with leading dimensions, offsets, bias and accumulation, at shapes that are not
 * tile multiples: odd ones (scalar loads) and multiples of 4 (f32 takes the 16-byte loads),
 * with K over 2 * BK so the double-buffered tiles cycle. Two runs give the same bits.
 *
 * Tolerance as in matmul_test.ts: f32 sums of <= 44 terms of size ~1 within 1e-5 + 1e-5 * |x|
 * of f64 sums (c is f32 here); 16-bit operands are rounded before the reference sees them, and
 * f16 products (shader-f16) are within (BK + 1) * 2^-11 * sum_k |a_k b_k| (see matmul_test.ts).
 */
import { assertClose, assertEquals } from "./_assert.ts";
import { randomFloats } from "./_random.ts";
import { type Gpu, requestGpu, withErrorScope } from "../src/gpu/device.ts";
import { readBuffer, readF32, uploadBuffer } from "../src/gpu/buffer.ts";
import { type Dispatch, submit } from "../src/gpu/kernel.ts";
import { roundTo, type StorageType, uploadStorage } from "../src/gpu/storage.ts";
import { createMatmul, type GemmDesc } from "../src/model/matmul.ts";
import { MATMUL_VARIANTS } from "../src/model/matmul_tiles.ts";
import { matmulForward } from "../src/model/reference/matmul.ts";

const TOL = { rtol: 1e-5, atol: 1e-5 };

const LAYOUTS = [["mk", "nk"], ["mk", "kn"], ["km", "kn"], ["km", "nk"]] as const;

/** [M, N, K]: odd (scalar loads), and multiples of 4 (16-byte loads for f32). */
const SHAPES = [
  { shape: [37, 45, 29], aligned: false },
  { shape: [133, 70, 41], aligned: false },
  { shape: [36, 44, 28], aligned: true },
  { shape: [132, 68, 44], aligned: true },
];

/** Rows (cols) of `x` stored with stride `ld` from `offset`, packed and transposed if asked. */
function packed(
  x: Float32Array,
  offset: number,
  ld: number,
  rows: number,
  cols: number,
  transpose: boolean,
): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      out[transpose ? c * rows + r : r * cols + c] = x[offset + r * ld + c];
    }
  }
  return out;
}

/** One product of a test: its operands on the GPU and what the reference says c becomes. */
function product(
  gpu: Gpu,
  type: StorageType,
  [M, N, K]: number[],
  aligned: boolean,
  [aLayout, bLayout]: (typeof LAYOUTS)[number],
  withBiasAndAccumulate: boolean,
  seed: number,
) {
  const aKM = aLayout === "km", bNK = bLayout === "nk";
  const pad = aligned ? 4 : 3;
  const [ao, bo, co] = aligned ? [4, 8, 12] : [5, 2, 3];
  const [aRows, aCols] = aKM ? [K, M] : [M, K];
  const [bRows, bCols] = bNK ? [N, K] : [K, N];
  const lda = aCols + pad, ldb = bCols + pad, ldc = N + pad;
  const a = roundTo(type, randomFloats(ao + aRows * lda, seed));
  const b = roundTo(type, randomFloats(bo + bRows * ldb, seed + 1));
  const bias = roundTo(type, randomFloats(N, seed + 2));
  const c0 = randomFloats(co + M * ldc, seed + 3);
  // Reference: c (M, N) = a as (M, K) @ (b as (N, K))^T (+ bias), in f64 sums.
  const aMK = packed(a, ao, lda, aRows, aCols, aKM);
  const bNKp = packed(b, bo, ldb, bRows, bCols, !bNK);
  const abs = (x: Float32Array) => x.map(Math.abs);
  const sum = new Float32Array(M * N), absSum = new Float32Array(M * N);
  matmulForward(sum, aMK, bNKp, withBiasAndAccumulate ? bias : null, M, K, N);
  matmulForward(absSum, abs(aMK), abs(bNKp), null, M, K, N);
  const want = c0.slice();
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      const i = co + m * ldc + n;
      want[i] = (withBiasAndAccumulate ? c0[i] : 0) + sum[m * N + n];
    }
  }
  const bufs = {
    a: uploadStorage(gpu, type, a, "a"),
    b: uploadStorage(gpu, type, b, "b"),
    bias: uploadStorage(gpu, type, bias, "bias"),
    c: uploadBuffer(gpu, c0, "c"),
  };
  const desc: GemmDesc = {
    c: bufs.c,
    a: bufs.a,
    b: bufs.b,
    bias: withBiasAndAccumulate ? bufs.bias : null,
    M,
    N,
    K,
    aLayout,
    bLayout,
    lda,
    ldb,
    ldc,
    aOffset: ao,
    bOffset: bo,
    cOffset: co,
    accumulate: withBiasAndAccumulate,
    types: { a: type, b: type, c: "f32" },
  };
  const inside = (i: number) => i >= co && (i - co) % ldc < N;
  const maxAbsSum = absSum.reduce((x, v) => Math.max(x, v), 0);
  return { desc, bufs, c0, want, inside, maxAbsSum };
}

for (const [name, tiles] of Object.entries(MATMUL_VARIANTS)) {
  if (tiles.entry !== "tiled") continue;
  for (const type of ["f32", "bf16", "f16"] as const) {
    Deno.test(`matmul ${name} ${type}: every layout, odd and aligned shapes, bias and +=`, async (t) => {
      const gpu = await requestGpu();
      const op = await createMatmul(gpu, { tiles, type });
      const f16Products = type === "f16" && gpu.hasF16;
      let seed = 100;
      for (const [aLayout, bLayout] of LAYOUTS) {
        await t.step(`${aLayout}@${bLayout}`, async () => {
          for (const { shape, aligned } of SHAPES) {
            for (const withBiasAndAccumulate of [false, true]) {
              const what = `${aLayout}@${bLayout} ${shape.join("x")}` +
                (withBiasAndAccumulate ? " + bias, +=" : "");
              const p = product(
                gpu,
                type,
                shape,
                aligned,
                [aLayout, bLayout],
                withBiasAndAccumulate,
                seed += 4,
              );
              const dispatches = op.gemm(p.desc);
              const vec4 = aligned && type === "f32";
              const labels = dispatches.map((d) => d.kernel.label);
              const entry = `matmul_tiled${vec4 ? "4" : ""} `;
              assertEquals(labels.every((l) => l.startsWith(entry)), true, `${what}: ${labels}`);
              await withErrorScope(gpu, what, () => submit(gpu, dispatches));
              const products = f16Products ? (tiles.BK + 1) * 2 ** -11 * p.maxAbsSum : 0;
              const got = (await readF32(gpu, p.bufs.c)).subarray(0, p.want.length);
              assertClose(got, p.want, { ...TOL, atol: TOL.atol + products, label: what });
              // Elements of c outside the product (before its offset, row padding) are untouched.
              const outside = (x: Float32Array) => x.filter((_, i) => !p.inside(i));
              assertEquals(outside(got), outside(p.c0), `${what}: outside c`);
              destroyAll(dispatches, p.bufs);
            }
          }
        });
      }
      await t.step("two runs give the same bits", async () => {
        for (const layout of LAYOUTS) {
          for (const { shape, aligned } of [SHAPES[1], SHAPES[3]]) {
            const runs: Uint8Array[] = [];
            for (let run = 0; run < 2; run++) {
              const p = product(gpu, type, shape, aligned, layout, true, 7);
              const dispatches = op.gemm(p.desc);
              await withErrorScope(gpu, "repeat", () => submit(gpu, dispatches));
              runs.push(new Uint8Array(await readBuffer(gpu, p.bufs.c)));
              destroyAll(dispatches, p.bufs);
            }
            assertEquals(runs[0], runs[1], `${layout.join("@")} ${shape.join("x")}`);
          }
        }
      });
      op.destroy();
    });
  }
}

function destroyAll(dispatches: Dispatch[], bufs: Record<string, GPUBuffer>) {
  for (const d of dispatches) d.destroy();
  for (const b of Object.values(bufs)) b.destroy();
}

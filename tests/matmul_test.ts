/**
 * Parity of the matmul kernels with the CPU reference, for both tile variants, at odd shapes
 * (not tile multiples). Tolerance: |gpu - cpu| <= 1e-5 + 1e-5 * |cpu| (f32 sums of <= 45
 * terms of size ~1 against f64 sums); 1e-4 absolute for the K=768 case.
 */
import { assertClose, assertEquals, assertThrows } from "./_assert.ts";
import { randomFloats } from "./_random.ts";
import { requestGpu, withErrorScope } from "../src/gpu/device.ts";
import { readF32, uploadBuffer } from "../src/gpu/buffer.ts";
import { submit } from "../src/gpu/kernel.ts";
import { readStorage, roundTo, uploadStorage } from "../src/gpu/storage.ts";
import { createMatmul } from "../src/model/matmul.ts";
import { MATMUL_VARIANTS } from "../src/model/matmul_tiles.ts";
import { matmulBackward, matmulForward } from "../src/model/reference/matmul.ts";

/** Deterministic values in [-1, 1). */
const TOL = { rtol: 1e-5, atol: 1e-5 };

// Odd shapes take the scalar kernels; multiples of 4 take matmul_regs4 (16-byte loads).
const SHAPES = [[37, 45, 29], [36, 44, 28]];

// Splits over a 1 KiB binding limit.
const CASES: { shape: number[]; maxBinding?: number }[] = [
  { shape: SHAPES[0] },
  { shape: SHAPES[0], maxBinding: 1024 },
  { shape: SHAPES[1] },
];

for (const [name, tiles] of Object.entries(MATMUL_VARIANTS)) {
  for (const { shape: [N, C, OC], maxBinding } of CASES) {
    const split = maxBinding ? ", split over a 1 KiB binding limit" : "";
    Deno.test(`matmul ${name} ${N}x${C}x${OC}${split}: forward and backward match the reference`, async (t) => {
      const gpu = await requestGpu();
      const op = await createMatmul(gpu, { tiles, maxBinding });
      const inp = randomFloats(N * C, 1),
        weight = randomFloats(OC * C, 2),
        bias = randomFloats(OC, 3);
      const dout = randomFloats(N * OC, 4);
      const bufs = {
        inp: uploadBuffer(gpu, inp, "inp"),
        weight: uploadBuffer(gpu, weight, "weight"),
        bias: uploadBuffer(gpu, bias, "bias"),
        dout: uploadBuffer(gpu, dout, "dout"),
        out: uploadBuffer(gpu, randomFloats(N * OC, 5), "out"),
        dinp: uploadBuffer(gpu, randomFloats(N * C, 6), "dinp"),
        dweight: uploadBuffer(gpu, randomFloats(OC * C, 7), "dweight"),
        dbias: uploadBuffer(gpu, randomFloats(OC, 8), "dbias"),
      };
      const run = (d: ReturnType<typeof op.forward>) =>
        withErrorScope(gpu, "matmul test", () => submit(gpu, d));

      await t.step("kernel choice", () => {
        const labels = op.forward({ ...bufs, bias: null }, { N, C, OC }).map((d) => d.kernel.label);
        const vec4 = N % 4 === 0 && !maxBinding;
        const entry = `matmul_${tiles.entry}${vec4 ? "4" : ""} `;
        assertEquals(
          labels.every((l) => l.startsWith(entry)),
          true,
          labels.join(),
        );
      });
      for (const withBias of [true, false]) {
        await t.step(`forward ${withBias ? "with" : "without"} bias`, async () => {
          await run(op.forward({ ...bufs, bias: withBias ? bufs.bias : null }, { N, C, OC }));
          const want = new Float32Array(N * OC);
          matmulForward(want, inp, weight, withBias ? bias : null, N, C, OC);
          assertClose((await readF32(gpu, bufs.out)).subarray(0, N * OC), want, TOL);
        });
      }
      for (const accumulateDinp of [false, true]) {
        await t.step(`backward, dinp ${accumulateDinp ? "+=" : "="}`, async () => {
          const dinp = (await readF32(gpu, bufs.dinp)).slice(0, N * C);
          const dweight = (await readF32(gpu, bufs.dweight)).slice(0, OC * C);
          const dbias = (await readF32(gpu, bufs.dbias)).slice(0, OC);
          await run(op.backward(bufs, { N, C, OC, accumulateDinp }));
          matmulBackward(dinp, dweight, dbias, dout, inp, weight, N, C, OC, accumulateDinp);
          assertClose((await readF32(gpu, bufs.dinp)).subarray(0, N * C), dinp, TOL);
          assertClose((await readF32(gpu, bufs.dweight)).subarray(0, OC * C), dweight, TOL);
          assertClose((await readF32(gpu, bufs.dbias)).subarray(0, OC), dbias, TOL);
        });
      }
      await t.step(
        "gemm with offsets, leading dimensions and a (K, M) @ (N, K) layout",
        async () => {
          // c (M, N) at row stride ldc and offset co = a^T @ b^T, a (K, M) at stride lda and
          // offset ao, b (N, K) at stride ldb and offset bo; offsets multiples of 4 with the
          // shape that takes the vec4 kernel.
          const [ao, bo, co] = N % 4 ? [5, 2, 3] : [4, 8, 12];
          const [M, Nn, K, lda, ldb, ldc] = N % 4 ? [7, 6, 5, 9, 8, 11] : [8, 12, 8, 12, 8, 12];
          const a = randomFloats(ao + K * lda, 9), b = randomFloats(bo + Nn * ldb, 10);
          const c0 = randomFloats(co + M * ldc, 11);
          const [ga, gb, gc] = [
            uploadBuffer(gpu, a, "a"),
            uploadBuffer(gpu, b, "b"),
            uploadBuffer(gpu, c0, "c"),
          ];
          await run(op.gemm({
            c: gc,
            a: ga,
            b: gb,
            M,
            N: Nn,
            K,
            aLayout: "km",
            bLayout: "nk",
            lda,
            ldb,
            ldc,
            aOffset: ao,
            bOffset: bo,
            cOffset: co,
          }));
          const want = c0.slice();
          for (let m = 0; m < M; m++) {
            for (let n = 0; n < Nn; n++) {
              let sum = 0;
              for (let k = 0; k < K; k++) sum += a[ao + k * lda + m] * b[bo + n * ldb + k];
              want[co + m * ldc + n] = sum;
            }
          }
          assertClose((await readF32(gpu, gc)).subarray(0, want.length), want, TOL);
          for (const x of [ga, gb, gc]) x.destroy();
        },
      );
      for (const b of Object.values(bufs)) b.destroy();
      op.destroy();
    });
  }
}

// K passes: with kChunk 8, K = 45 runs as 5 passes of 8 and a tail of 5 (scalar kernel),
// K = 44 as 5 of 8 and a tail of 4 (all vec4).
for (const [name, variant] of Object.entries(MATMUL_VARIANTS)) {
  for (const K of [45, 44]) {
    Deno.test(`matmul ${name}: K=${K} in passes of 8 where an operand's rows are scattered`, async () => {
      const gpu = await requestGpu();
      const op = await createMatmul(gpu, { tiles: { ...variant, kChunk: 8 } });
      const [M, N, ld] = [K - 8, 12, 200]; // ld > BN and BM: a slice is a short piece per row
      const a = randomFloats(M * ld, 15), b = randomFloats(K * ld, 16), bias = randomFloats(N, 17);
      const c0 = randomFloats(M * N, 18);
      const [ga, gb, gbias, gc] = [
        uploadBuffer(gpu, a, "a"),
        uploadBuffer(gpu, b, "b"),
        uploadBuffer(gpu, bias, "bias"),
        uploadBuffer(gpu, c0, "c"),
      ];
      // c += a (M, K at stride ld) @ b (K, N at stride ld) + bias: "kn" b is scattered.
      const product = op.gemm({
        c: gc,
        a: ga,
        b: gb,
        bias: gbias,
        M,
        N,
        K,
        aLayout: "mk",
        bLayout: "kn",
        lda: ld,
        ldb: ld,
        accumulate: true,
      });
      assertEquals(product.length, Math.ceil(K / 8));
      await withErrorScope(gpu, "K passes", () => submit(gpu, product));
      const want = c0.slice();
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < N; n++) {
          let sum = bias[n];
          for (let k = 0; k < K; k++) sum += a[m * ld + k] * b[k * ld + n];
          want[m * N + n] += sum;
        }
      }
      assertClose(await readF32(gpu, gc), want, TOL);
      // Rows read whole ("mk" a, "nk" b, or "kn" b no wider than a tile) take one pass.
      const whole = [
        op.gemm({ c: gc, a: ga, b: gb, M, N, K, aLayout: "mk", bLayout: "nk", lda: ld, ldb: ld }),
        op.gemm({ c: gc, a: ga, b: gb, M, N, K, aLayout: "mk", bLayout: "kn", lda: ld }),
      ];
      assertEquals(whole.map((d) => d.length), [1, 1]);
      for (const d of [...product, ...whole.flat()]) d.destroy();
      for (const x of [ga, gb, gbias, gc]) x.destroy();
      op.destroy();
    });
  }
}

Deno.test("matmul: an operand over gpu.maxBinding is bound in ranges", async () => {
  const gpu = await requestGpu();
  if (gpu.maxBinding > 256 * 2 ** 20) return; // too large to allocate in a test on this adapter
  const op = await createMatmul(gpu);
  // weight (OC, C) one row longer than the binding limit, like wte on lavapipe.
  const [N, C] = [3, 768];
  const OC = Math.floor(gpu.maxBinding / (C * 4)) + 37;
  const inp = randomFloats(N * C, 12), weight = randomFloats(OC * C, 13);
  const [gi, gw] = [uploadBuffer(gpu, inp, "inp"), uploadBuffer(gpu, weight, "weight")];
  const gout = uploadBuffer(gpu, new Float32Array(N * OC), "out");
  const gdinp = uploadBuffer(gpu, new Float32Array(N * C), "dinp");
  const dout = randomFloats(N * OC, 14);
  const gdout = uploadBuffer(gpu, dout, "dout");
  await withErrorScope(
    gpu,
    "forward",
    () => submit(gpu, op.forward({ out: gout, inp: gi, weight: gw, bias: null }, { N, C, OC })),
  );
  const want = new Float32Array(N * OC);
  matmulForward(want, inp, weight, null, N, C, OC);
  assertClose((await readF32(gpu, gout)).subarray(0, N * OC), want, { rtol: 1e-5, atol: 1e-4 });
  const backward = op.backward(
    { dinp: gdinp, dweight: null, dbias: null, dout: gdout, inp: gi, weight: gw },
    { N, C, OC },
  );
  await withErrorScope(gpu, "backward", () => submit(gpu, backward));
  const wantDinp = new Float32Array(N * C);
  matmulBackward(wantDinp, null, null, dout, inp, weight, N, C, OC);
  assertClose(await readF32(gpu, gdinp), wantDinp, { rtol: 1e-4, atol: 1e-3 });
  for (const b of [gi, gw, gout, gdinp, gdout]) b.destroy();
  op.destroy();
});

Deno.test("matmul: a binding too small for the shape is a clear error", async () => {
  const gpu = await requestGpu();
  const op = await createMatmul(gpu);
  const small = uploadBuffer(gpu, new Float32Array(8), "small");
  assertThrows(
    () => op.forward({ out: small, inp: small, weight: small, bias: null }, { N: 4, C: 4, OC: 4 }),
    RangeError,
    'buffer "small"',
  );
  small.destroy();
  op.destroy();
});

// 16-bit storage (activations and weights, as in a bf16 or f16 model): the reference gets the
// same rounded inputs. bf16 computes in f32, so an output stored as bf16 is the f32 result
// rounded once: within 2^-9 relative, stated as 2^-8 relative on top of TOL; dweight and dbias
// accumulate into f32 and keep TOL. The 1 KiB limit puts pieces at odd elements and splits K
// into 3 pieces that each add into c, rounding once each: each rounding is within 2^-9 of a
// partial sum (at most ~11 here: 10 products of |x| < 1 plus dinp's |x| < 1), so the split
// case allows 3 * 2^-9 * 11 < 0.07 absolute (cancellation makes relative meaningless).
// f16 stores round to 11 bits (2^-11, stated as 2^-10 relative; the split case 3 * 2^-11 * 11
// < 0.02), and with shader-f16 the products of two f16 operands are f16: each product rounds
// (2^-11 relative) and each of the <= BK additions of a partial sum before its flush into f32
// rounds (2^-11 of the partial sum), so an output is within (BK + 1) * 2^-11 * sum_k |a_k b_k|
// of the exact sum; that bound, from the reference run on |a| and |b|, is added to the atol.
const STORE_TOL = {
  bf16: { rtol: 2 ** -8 + TOL.rtol, atol: TOL.atol, split: 0.07 },
  f16: { rtol: 2 ** -10 + TOL.rtol, atol: TOL.atol, split: 0.02 },
};

function maxAbs(x: Float32Array): number {
  return x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

for (const type of ["bf16", "f16"] as const) {
  for (const [name, tiles] of Object.entries(MATMUL_VARIANTS)) {
    for (const maxBinding of [undefined, 1024]) {
      const [N, C, OC] = SHAPES[0];
      const split = maxBinding ? ", split over a 1 KiB binding limit" : "";
      Deno.test(`matmul ${name} ${type} ${N}x${C}x${OC}${split}: forward and backward`, async () => {
        const gpu = await requestGpu();
        const op = await createMatmul(gpu, { tiles, maxBinding, type });
        const stored = (x: Float32Array) => roundTo(type, x);
        const inp = stored(randomFloats(N * C, 1)),
          weight = stored(randomFloats(OC * C, 2)),
          bias = stored(randomFloats(OC, 3)),
          dout = stored(randomFloats(N * OC, 4)),
          dinp0 = stored(randomFloats(N * C, 6)),
          dweight0 = randomFloats(OC * C, 7),
          dbias0 = randomFloats(OC, 8);
        const up = (x: Float32Array, label: string) => uploadStorage(gpu, type, x, label);
        const bufs = {
          inp: up(inp, "inp"),
          weight: up(weight, "weight"),
          bias: up(bias, "bias"),
          dout: up(dout, "dout"),
          out: up(new Float32Array(N * OC), "out"),
          dinp: up(dinp0, "dinp"),
          dweight: uploadBuffer(gpu, dweight0, "dweight"),
          dbias: uploadBuffer(gpu, dbias0, "dbias"),
        };
        const dispatches = [
          ...op.forward(bufs, { N, C, OC }),
          ...op.backward(bufs, { N, C, OC, accumulateDinp: true }),
        ];
        const f16Products = type === "f16" && gpu.hasF16;
        assertEquals(op.f16Products, f16Products);
        const labels = dispatches.map((d) => d.kernel.label);
        assertEquals(labels.some((l) => l.endsWith("f16 products")), f16Products, labels.join());
        await withErrorScope(gpu, `matmul ${type}`, () => submit(gpu, dispatches));
        const out = new Float32Array(N * OC);
        matmulForward(out, inp, weight, bias, N, C, OC);
        const dinp = dinp0.slice(), dweight = dweight0.slice(), dbias = dbias0.slice();
        matmulBackward(dinp, dweight, dbias, dout, inp, weight, N, C, OC, true);
        // sum_k |a_k b_k| of each output, for the f16 products' bound.
        const abs = (x: Float32Array) => x.map(Math.abs);
        const absOut = new Float32Array(N * OC), absDinp = new Float32Array(N * C);
        const absDweight = new Float32Array(OC * C);
        matmulForward(absOut, abs(inp), abs(weight), null, N, C, OC);
        matmulBackward(absDinp, absDweight, null, abs(dout), abs(inp), abs(weight), N, C, OC);
        const products = (x: Float32Array) =>
          f16Products ? (tiles.BK + 1) * 2 ** -11 * maxAbs(x) : 0;
        const store = STORE_TOL[type];
        const atol = maxBinding ? store.split : store.atol;
        const read = (b: GPUBuffer, n: number) => readStorage(gpu, type, b, n);
        const gotOut = await read(bufs.out, N * OC);
        assertClose(gotOut, out, { rtol: store.rtol, atol: atol + products(absOut), label: "out" });
        assertClose(await read(bufs.dinp, N * C), dinp, {
          rtol: store.rtol,
          atol: atol + products(absDinp),
          label: "dinp",
        });
        const dw = (await readF32(gpu, bufs.dweight)).subarray(0, OC * C);
        assertClose(dw, dweight, {
          ...TOL,
          atol: TOL.atol + products(absDweight),
          label: "dweight",
        });
        const db = (await readF32(gpu, bufs.dbias)).subarray(0, OC);
        assertClose(db, dbias, { ...TOL, label: "dbias" });
        if (f16Products) {
          // The f16 arithmetic did run: f32 products of the same operands, rounded once to f16
          // (what f16 storage alone gives), differ from it somewhere.
          assertEquals(gotOut.some((v, i) => v !== roundTo("f16", [out[i]])[0]), true);
        }
        for (const d of dispatches) d.destroy();
        for (const b of Object.values(bufs)) b.destroy();
        op.destroy();
      });
    }

    Deno.test(`matmul ${name} ${type}: mixed-type gemm (f32 a, ${type} b and c) at odd offsets`, async () => {
      const gpu = await requestGpu();
      const op = await createMatmul(gpu, { tiles, type });
      const [M, Nn, K, lda, ldb, ldc, ao, bo, co] = [7, 6, 5, 9, 8, 11, 5, 3, 1];
      const a = randomFloats(ao + K * lda, 9), b = roundTo(type, randomFloats(bo + Nn * ldb, 10));
      const c0 = roundTo(type, randomFloats(co + M * ldc, 11));
      const ga = uploadBuffer(gpu, a, "a");
      const gb = uploadStorage(gpu, type, b, "b"), gc = uploadStorage(gpu, type, c0, "c");
      const dispatches = op.gemm({
        c: gc,
        a: ga,
        b: gb,
        M,
        N: Nn,
        K,
        aLayout: "km",
        bLayout: "nk",
        lda,
        ldb,
        ldc,
        aOffset: ao,
        bOffset: bo,
        cOffset: co,
        accumulate: true,
        types: { a: "f32", b: type, c: type },
      });
      // An f32 operand keeps f32 products.
      assertEquals(dispatches.some((d) => d.kernel.label.endsWith("f16 products")), false);
      await withErrorScope(gpu, "matmul mixed", () => submit(gpu, dispatches));
      const want = c0.slice();
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < Nn; n++) {
          let sum = 0;
          for (let k = 0; k < K; k++) sum += a[ao + k * lda + m] * b[bo + n * ldb + k];
          want[co + m * ldc + n] += sum;
        }
      }
      // Elements of c outside the product (other rows' padding) are untouched, bit for bit.
      const got = await readStorage(gpu, type, gc, want.length);
      assertClose(got, want, STORE_TOL[type]);
      assertEquals(got.subarray(0, co), c0.subarray(0, co));
      for (const d of dispatches) d.destroy();
      for (const x of [ga, gb, gc]) x.destroy();
      op.destroy();
    });
  }
}

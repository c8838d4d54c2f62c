/**
 * Parity of the fused classifier with the CPU reference at V=101, Vp=128, C=24, N=13, with a
 * scratch of 4 rows (4 chunks, the last one short), for both matmul tile variants and with a
 * binding limit that splits wte. Tolerances: losses and logits 1e-5 + 1e-5 * |ref|; dx and
 * dwte 1e-6 + 1e-4 * |ref| (they are sums of 101 or 13 products of size ~dloss = 1/13).
 */
import { assert, assertClose, assertEquals, assertThrows } from "./_assert.ts";
import { randomFloats } from "./_random.ts";
import { requestGpu, withErrorScope } from "../src/gpu/device.ts";
import { createBuffer, readBuffer, readF32, uploadBuffer } from "../src/gpu/buffer.ts";
import { type Dispatch, submit } from "../src/gpu/kernel.ts";
import { MATMUL_VARIANTS, type MatmulTiles } from "../src/model/matmul_tiles.ts";
import {
  classifierScratchBudget,
  classifierScratchBytes,
  createClassifier,
} from "../src/model/classifier.ts";
import {
  readStorage,
  roundTo,
  storageBytes,
  type StorageType,
  uploadStorage,
} from "../src/gpu/storage.ts";
import { classifierBackward, classifierForward } from "../src/model/reference/classifier.ts";
import { matmulForward } from "../src/model/reference/matmul.ts";

const [N, C, V, Vp] = [13, 24, 101, 128];
const shape = { N, C, V, Vp };
const dloss = 1 / N;
const SMALL = { rtol: 1e-5, atol: 1e-5 };
const GRAD = { rtol: 1e-4, atol: 1e-6 };

const { regs, tiled } = MATMUL_VARIANTS;
const cases: [string, MatmulTiles, number | undefined][] = [
  ["regs", regs, undefined],
  ["tiled", tiled, undefined],
  ["regs, wte split over a 4 KiB binding limit", regs, 4096],
  // dx = dlogits @ wte has K = Vp and reads C = 24 > BN = 8 columns of wte per row: as on
  // GPT-2's vocabulary, it runs in accumulated passes over K (here 4 of 32).
  [
    "regs 8 x 8 tiles, dx in K passes of 40",
    { entry: "regs", WX: 2, WY: 2, TM: 4, TN: 4, BK: 4, kChunk: 40 },
    undefined,
  ],
];

for (const [name, tiles, maxBinding] of cases) {
  Deno.test(`classifier ${name}: losses, dx, dwte, logits and mean match`, async (t) => {
    const gpu = await requestGpu();
    const op = await createClassifier(gpu, { tiles, maxBinding });
    const read = (b: GPUBuffer) => readF32(gpu, b);
    const x = randomFloats(N * C, 1), wte = randomFloats(Vp * C, 2, 0.5);
    const targets = Uint32Array.from({ length: N }, (_, i) => (i * 37 + 5) % V);
    targets[3] = V - 1; // the last real column
    const dwte0 = randomFloats(Vp * C, 3, 0.01);
    const dx0 = randomFloats(N * C, 4, 0.01);
    const g = {
      x: uploadBuffer(gpu, x, "x"),
      wte: uploadBuffer(gpu, wte, "wte"),
      targets: uploadBuffer(gpu, targets, "targets"),
      losses: createBuffer(gpu, N * 4, "losses"),
      scratch: createBuffer(gpu, 4 * Vp * 4, "scratch"),
      dx: uploadBuffer(gpu, dx0, "dx"),
      dwte: uploadBuffer(gpu, dwte0, "dwte"),
      logits: createBuffer(gpu, Vp * 4, "logits"),
      mean: createBuffer(gpu, 4, "mean"),
    };
    const run = (d: Dispatch[]) => withErrorScope(gpu, "classifier test", () => submit(gpu, d));
    const losses = new Float32Array(N), probs = new Float32Array(N * Vp);
    classifierForward(losses, probs, x, wte, targets, N, C, V, Vp);

    await t.step("forward only: losses", async () => {
      await run(op.forward(g, shape));
      assertClose((await read(g.losses)).subarray(0, N), losses, SMALL);
      assertEquals(Array.from(await read(g.dx)).slice(0, N * C), Array.from(dx0));
    });
    await t.step(
      "forward + backward: losses, dx (=), dwte (+=), padded rows untouched",
      async () => {
        const dispatches = op.forwardBackward(g, { ...shape, dloss });
        if (tiles.kChunk) {
          // 4 passes of dx per chunk of 4 rows.
          const dxPasses = dispatches.filter((d) => d.kernel.label.endsWith("mk@kn")).length;
          assertEquals(dxPasses, Math.ceil(N / 4) * 4);
        }
        await run(dispatches);
        const dx = new Float32Array(N * C), dwte = dwte0.slice();
        classifierBackward(dx, dwte, probs, x, wte, targets, dloss, N, C, Vp);
        assertClose((await read(g.losses)).subarray(0, N), losses, SMALL);
        assertClose((await read(g.dx)).subarray(0, N * C), dx, { ...GRAD, label: "dx" });
        const gotDwte = (await read(g.dwte)).subarray(0, Vp * C);
        assertClose(gotDwte, dwte, { ...GRAD, label: "dwte" });
        assertEquals(Array.from(gotDwte.subarray(V * C)), Array.from(dwte0.subarray(V * C)));
        // The scratch holds the last chunk's dlogits: row N-1 alone, padded columns exactly 0.
        const dlogits = (await read(g.scratch)).subarray(0, Vp);
        const want = Array.from(
          probs.subarray((N - 1) * Vp, N * Vp),
          (p, v) => v < V ? (p - (v === targets[N - 1] ? 1 : 0)) * dloss : 0,
        );
        assertClose(dlogits, want, { ...GRAD, label: "dlogits" });
        assertEquals(Array.from(dlogits.subarray(V)), new Array(Vp - V).fill(0));
      },
    );
    await t.step("the same inputs give bit-identical gradients", async () => {
      const before = new Uint8Array(await readBuffer(gpu, g.dx));
      await run(op.forwardBackward(g, { ...shape, dloss }));
      assertEquals(new Uint8Array(await readBuffer(gpu, g.dx)), before);
    });
    await t.step("logits of the last row for sampling", async () => {
      await run(op.logits(g, { row0: N - 1, rows: 1, C, V, Vp }));
      const want = new Float32Array(Vp);
      matmulForward(want, x.subarray((N - 1) * C), wte, null, 1, C, Vp);
      assertClose((await read(g.logits)).subarray(0, V), want.subarray(0, V), SMALL);
    });
    await t.step("mean loss", async () => {
      await run([op.meanLoss({ out: g.mean, losses: g.losses }, { N })]);
      const want = losses.reduce((a, b) => a + b, 0) / N;
      assertClose((await read(g.mean)).subarray(0, 1), [want], SMALL);
    });
    for (const b of Object.values(g)) b.destroy();
    op.destroy();
  });
}

// bf16 or f16 x, wte and dx (a 16-bit model's lnf output, weight copy and its gradient): the
// reference gets the same rounded x and wte; logits, losses and dlogits are f32 from them
// (SMALL, GRAD), dx is rounded once to 16 bits (2^-8 relative for bf16, 2^-10 for f16, on top
// of GRAD), dwte is f32 (GRAD). With f16 products (shader-f16) every logit x.wte is within
// e = (BK + 1) * 2^-11 * max sum_c |x_c wte_c| of the exact one (see tests/matmul_test.ts), so
// a loss, lse(logits) - logit[target], is within 2e; a probability moves by at most p (e^2e - 1)
// ~ 2e p, so dx = sum_v dloss dp_v wte_v moves by at most 2e dloss max|wte| (sum_v p_v = 1) and
// dwte = sum_n dloss dp_nv x_n by at most 2e max|x| (N dloss = 1, p <= 1).
for (const type of ["bf16", "f16"] as const) {
  Deno.test(`classifier ${type}: losses, dx and dwte match the reference`, async () => {
    const gpu = await requestGpu();
    const op = await createClassifier(gpu, { type });
    const x = roundTo(type, randomFloats(N * C, 1)),
      wte = roundTo(type, randomFloats(Vp * C, 2, 0.5));
    const targets = Uint32Array.from({ length: N }, (_, i) => (i * 37 + 5) % V);
    const dwte0 = randomFloats(Vp * C, 3, 0.01);
    const g = {
      x: uploadStorage(gpu, type, x, "x"),
      wte: uploadStorage(gpu, type, wte, "wte"),
      targets: uploadBuffer(gpu, targets, "targets"),
      losses: createBuffer(gpu, N * 4, "losses"),
      scratch: createBuffer(gpu, 4 * Vp * 4, "scratch"),
      dx: createBuffer(gpu, N * C * 2, "dx"),
      dwte: uploadBuffer(gpu, dwte0, "dwte"),
    };
    const dispatches = op.forwardBackward(g, { ...shape, dloss });
    await withErrorScope(gpu, `classifier ${type}`, () => submit(gpu, dispatches));
    const losses = new Float32Array(N), probs = new Float32Array(N * Vp);
    classifierForward(losses, probs, x, wte, targets, N, C, V, Vp);
    const dx = new Float32Array(N * C), dwte = dwte0.slice();
    classifierBackward(dx, dwte, probs, x, wte, targets, dloss, N, C, Vp);
    const absLogits = new Float32Array(N * Vp);
    matmulForward(absLogits, x.map(Math.abs), wte.map(Math.abs), null, N, C, Vp);
    const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const e = op.matmul.f16Products ? (op.matmul.tiles.BK + 1) * 2 ** -11 * maxAbs(absLogits) : 0;
    assertEquals(op.matmul.f16Products, type === "f16" && gpu.hasF16);
    const losses_ = (await readF32(gpu, g.losses)).subarray(0, N);
    assertClose(losses_, losses, { ...SMALL, atol: SMALL.atol + 2 * e, label: "loss" });
    const gotDx = await readStorage(gpu, type, g.dx, N * C);
    const rtol = (type === "bf16" ? 2 ** -8 : 2 ** -10) + GRAD.rtol;
    const dxAtol = GRAD.atol + 2 * e * dloss * maxAbs(wte);
    assertClose(gotDx, dx, { rtol, atol: dxAtol, label: "dx" });
    const gotDwte = (await readF32(gpu, g.dwte)).subarray(0, Vp * C);
    assertClose(gotDwte, dwte, { ...GRAD, atol: GRAD.atol + 2 * e * maxAbs(x), label: "dwte" });
    for (const d of dispatches) d.destroy();
    for (const b of Object.values(g)) b.destroy();
    op.destroy();
  });
}

Deno.test("classifier: a scratch smaller than one row is a clear error", async () => {
  const gpu = await requestGpu();
  const op = await createClassifier(gpu);
  const b = createBuffer(gpu, 256, "tiny");
  assertThrows(
    () =>
      op.forward({ losses: b, x: b, wte: b, targets: b, scratch: b }, {
        N: 2,
        C: 4,
        V: 101,
        Vp: 128,
      }),
    RangeError,
    "scratch",
  );
  b.destroy();
  op.destroy();
});

/** Losses, dx, dwte, mean loss and chunks of one forwardBackward at the given shape and scratch rows. */
async function runClassifier(
  s: { N: number; C: number; V: number; Vp: number },
  o: { type?: StorageType; subgroups?: boolean; scratchRows: number },
) {
  const gpu = await requestGpu();
  const type = o.type ?? "f32";
  const op = await createClassifier(gpu, { type, subgroups: o.subgroups });
  const x = roundTo(type, randomFloats(s.N * s.C, 11)),
    wte = roundTo(type, randomFloats(s.Vp * s.C, 12, 0.5));
  const targets = Uint32Array.from({ length: s.N }, (_, i) => (i * 37 + 5) % s.V);
  targets[1] = s.V - 1;
  const dwte0 = randomFloats(s.Vp * s.C, 13, 0.01);
  const g = {
    x: uploadStorage(gpu, type, x, "x"),
    wte: uploadStorage(gpu, type, wte, "wte"),
    targets: uploadBuffer(gpu, targets, "targets"),
    losses: createBuffer(gpu, s.N * 4, "losses"),
    scratch: createBuffer(gpu, o.scratchRows * s.Vp * 4, "scratch"),
    dx: createBuffer(gpu, storageBytes(type, s.N * s.C), "dx"),
    dwte: uploadBuffer(gpu, dwte0, "dwte"),
    mean: createBuffer(gpu, 4, "mean"),
  };
  const dispatches = [
    ...op.forwardBackward(g, { ...s, dloss: 1 / s.N }),
    op.meanLoss({ out: g.mean, losses: g.losses }, { N: s.N }),
  ];
  await withErrorScope(gpu, "classifier", () => submit(gpu, dispatches));
  const got = {
    losses: (await readF32(gpu, g.losses)).slice(0, s.N),
    dx: await readStorage(gpu, type, g.dx, s.N * s.C),
    dwte: (await readF32(gpu, g.dwte)).slice(0, s.Vp * s.C),
    mean: (await readF32(gpu, g.mean))[0],
  };
  const chunks = dispatches.filter((d) => d.kernel.label.endsWith("softmax_xent")).length;
  for (const d of dispatches) d.destroy();
  for (const b of Object.values(g)) b.destroy();
  op.destroy();
  const want = { losses: new Float32Array(s.N), dx: new Float32Array(s.N * s.C), dwte: dwte0 };
  const probs = new Float32Array(s.N * s.Vp);
  classifierForward(want.losses, probs, x, wte, targets, s.N, s.C, s.V, s.Vp);
  classifierBackward(want.dx, want.dwte, probs, x, wte, targets, 1 / s.N, s.N, s.C, s.Vp);
  return { got, want, chunks };
}

// The softmax's max and sum in subgroups (lavapipe's hold 8 invocations) or in workgroup
// memory follow the same tree: the same bits, for every storage type, at shapes that fit no
// workgroup, subgroup or 16-byte load (C = 37, 70; V = 300 > WG; Vp = 301, 102), and the f32
// results at the reference (tolerances as above).
Deno.test("classifier: with and without subgroups, bit-identical and at the reference", async (t) => {
  const gpu = await requestGpu();
  assert(gpu.hasSubgroups, `the device "${gpu.name}" lacks subgroups: one path untested`);
  const shapes = [{ N: 13, C: 37, V: 300, Vp: 301 }, { N: 9, C: 70, V: 97, Vp: 102 }];
  for (const s of shapes) {
    for (const type of ["f32", "bf16", "f16"] as const) {
      await t.step(`N=${s.N} C=${s.C} V=${s.V} Vp=${s.Vp} ${type}`, async () => {
        const sub = await runClassifier(s, { type, subgroups: true, scratchRows: 4 });
        const mem = await runClassifier(s, { type, subgroups: false, scratchRows: 4 });
        assertEquals(sub.got, mem.got);
        if (type !== "f32") return;
        assertClose(sub.got.losses, sub.want.losses, { ...SMALL, label: "losses" });
        assertClose(sub.got.dx, sub.want.dx, { ...GRAD, label: "dx" });
        assertClose(sub.got.dwte, sub.want.dwte, { ...GRAD, label: "dwte" });
        const mean = sub.want.losses.reduce((a, b) => a + b, 0) / s.N;
        assertClose([sub.got.mean], [mean], { ...SMALL, label: "mean loss" });
      });
    }
  }
});

// The budget follows the device's limits; on this software adapter it allows all N rows of
// the test shapes in one chunk, and a scratch forced to 4 rows runs 4 chunks to the same
// results (dwte sums the chunks in another order, so it is compared within tolerance).
Deno.test("classifier: one chunk when the device's budget allows, the same results in four", async () => {
  const gpu = await requestGpu();
  const { maxStorageBufferBindingSize, maxBufferSize } = gpu.device.limits;
  const budget = classifierScratchBudget(gpu);
  const cap = gpu.isFallback ? 256 * 2 ** 20 : 4 * 2 ** 30;
  assertEquals(budget, Math.min(maxStorageBufferBindingSize, maxBufferSize, cap));
  const s = { N: 13, C: 37, V: 300, Vp: 301 };
  const rows = classifierScratchBytes(gpu, s.N, s.Vp) / (s.Vp * 4);
  assertEquals(rows, s.N);
  // A budget of 1.5 rows gives one row, and a budget under a row still one.
  assertEquals(classifierScratchBytes(gpu, s.N, s.Vp, 1.5 * s.Vp * 4), s.Vp * 4);
  assertEquals(classifierScratchBytes(gpu, s.N, s.Vp, 8), s.Vp * 4);
  const one = await runClassifier(s, { scratchRows: rows });
  const four = await runClassifier(s, { scratchRows: 4 });
  assertEquals([one.chunks, four.chunks], [1, 4]);
  assertEquals(four.got.losses, one.got.losses);
  for (const r of [one, four]) {
    assertClose(r.got.losses, r.want.losses, { ...SMALL, label: "losses" });
    assertClose(r.got.dx, r.want.dx, { ...GRAD, label: "dx" });
    assertClose(r.got.dwte, r.want.dwte, { ...GRAD, label: "dwte" });
  }
});

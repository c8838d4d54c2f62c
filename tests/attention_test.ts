import { assert, assertClose, assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import { randomFloats } from "./_random.ts";
import { requestGpu } from "../src/gpu/device.ts";
import { createBuffer, readF32 } from "../src/gpu/buffer.ts";
import { submit } from "../src/gpu/kernel.ts";
import {
  readStorage,
  roundTo,
  roundToBf16,
  storageBytes,
  uploadStorage,
} from "../src/gpu/storage.ts";
import {
  type AttentionKernels,
  type AttentionOptions,
  type AttentionShape,
  createAttention,
} from "../src/model/attention.ts";
import { attentionTiles, workgroupBytes } from "../src/model/attention_tiles.ts";
import { attentionBackward, attentionForward } from "../src/model/reference/attention.ts";

// Tolerances: the GPU sums in f32 in a different order (online softmax, exp(s - lse) instead
// of a normalized softmax); the reference sums in f64. Worst errors seen on lavapipe are
// 6e-7 absolute (8e-7 for dqkv) on values up to 2.
const FORWARD_TOL = { rtol: 1e-5, atol: 2e-6 };
const BACKWARD_TOL = { rtol: 1e-5, atol: 2e-6 };

// Both kernel sets run everywhere: `rows` is the software adapter's default and `tiled` the
// GPU's, so each is called explicitly here.
const KERNELS: AttentionKernels[] = ["rows", "tiled"];

/** Forward and backward on the GPU; returns out, lse and dqkv. */
async function runGpu(
  s: AttentionShape,
  qkv: Float32Array<ArrayBuffer>,
  dout: Float32Array<ArrayBuffer>,
  options: AttentionOptions = {},
) {
  const { B, T, C, NH } = s;
  const gpu = await requestGpu();
  const op = await createAttention(gpu, C / NH, options);
  if (options.kernels) assertEquals(op.kernels, options.kernels);
  const type = options.type ?? "f32";
  const buffers = {
    qkv: uploadStorage(gpu, type, qkv, "qkv"),
    dout: uploadStorage(gpu, type, dout, "dout"),
    out: createBuffer(gpu, storageBytes(type, B * T * C), "out"),
    lse: createBuffer(gpu, B * NH * T * 4, "lse"),
    delta: createBuffer(gpu, B * NH * T * 4, "delta"),
    dqkv: createBuffer(gpu, storageBytes(type, B * T * 3 * C), "dqkv"),
  };
  const dispatches = [...op.forward(buffers, s), ...op.backward(buffers, s)];
  submit(gpu, dispatches);
  const result = {
    f16Products: op.f16Products,
    out: await readStorage(gpu, type, buffers.out, B * T * C),
    lse: (await readF32(gpu, buffers.lse)).slice(0, B * NH * T),
    dqkv: await readStorage(gpu, type, buffers.dqkv, B * T * 3 * C),
  };
  gpu.throwIfFailed("attention test");
  for (const b of Object.values(buffers)) b.destroy();
  for (const d of dispatches) d.destroy();
  return result;
}

function runCpu(s: AttentionShape, qkv: Float32Array, dout: Float32Array) {
  const { B, T, C, NH } = s;
  const out = new Float32Array(B * T * C);
  const lse = new Float32Array(B * NH * T);
  const dqkv = new Float32Array(B * T * 3 * C);
  attentionForward(out, lse, qkv, B, T, C, NH);
  attentionBackward(dqkv, dout, qkv, B, T, C, NH);
  return { out, lse, dqkv };
}

// T is never a multiple of a tile: rows' 16-key tiles and 64-row workgroups; tiled's 16-column
// tiles and 32- or 64-row blocks (HS 64), and its thread splits TX = 1, 2, 4, 8 (HS 4, 8, 48, 64).
const SHAPES: AttentionShape[] = [
  { B: 3, T: 1, C: 4, NH: 1 }, // one token, one head of 4
  { B: 2, T: 7, C: 12, NH: 3 }, // HS 4, one partial tile
  { B: 2, T: 33, C: 16, NH: 2 }, // HS 8, crosses 16-row tiles
  { B: 1, T: 70, C: 48, NH: 3 }, // HS 16, crosses 64-row workgroups
  { B: 2, T: 37, C: 64, NH: 4 }, // HS 16, four heads
  { B: 1, T: 37, C: 96, NH: 2 }, // HS 48: three vec4 columns per tiled thread
  { B: 1, T: 67, C: 128, NH: 2 }, // HS 64 as in GPT-2
  { B: 2, T: 70, C: 128, NH: 2 }, // HS 64, several blocks of rows and of keys
  { B: 1, T: 37, C: 256, NH: 2 }, // HS 128, the largest: tiled halves its rows per thread
];

for (const kernels of KERNELS) {
  for (const s of SHAPES) {
    Deno.test(`attention: ${kernels} kernels match CPU reference at B=${s.B} T=${s.T} C=${s.C} NH=${s.NH}`, async () => {
      await checkF32Parity(s, { kernels });
    });
  }
}

// The tiled kernels shrink their tiles to fit a device with less workgroup memory.
Deno.test("attention: tiled kernels with tiles shrunk to 12 KiB of workgroup memory", async () => {
  await checkF32Parity({ B: 2, T: 70, C: 128, NH: 2 }, {
    kernels: "tiled",
    maxWorkgroupBytes: 12288,
  });
});

async function checkF32Parity(s: AttentionShape, options: AttentionOptions) {
  const { B, T, C } = s;
  const qkv = randomFloats(B * T * 3 * C, 1, 2);
  const dout = randomFloats(B * T * C, 2);
  const gpu = await runGpu(s, qkv, dout, options);
  const cpu = runCpu(s, qkv, dout);
  assertClose(gpu.out, cpu.out, { ...FORWARD_TOL, label: "out" });
  assertClose(gpu.lse, cpu.lse, { ...FORWARD_TOL, label: "lse" });
  assertClose(gpu.dqkv, cpu.dqkv, { ...BACKWARD_TOL, label: "dqkv" });
}

Deno.test("attention: tiles fit the workgroup memory, shrinking rows first", () => {
  for (const kernel of ["forward", "dq", "dkdv"] as const) {
    for (const HS of [4, 16, 48, 64, 128]) {
      const full = attentionTiles(kernel, HS, 4, 32768);
      assert(workgroupBytes(full, HS, 4) <= 32768, `${kernel} HS ${HS}`);
      assertEquals(HS / 4 % full.TX, 0);
      const small = attentionTiles(kernel, HS, 4, 12288);
      assert(workgroupBytes(small, HS, 4) <= 12288, `${kernel} HS ${HS} at 12 KiB`);
    }
  }
  assertEquals(attentionTiles("forward", 64, 4, 32768).TY, 16);
  const half = attentionTiles("forward", 64, 4, 16384); // 20,736 bytes at TY 8, 14,784 at 4
  assertEquals([half.TY, half.CN], [4, 2]);
  assertThrows(() => attentionTiles("dq", 128, 4, 1024), RangeError, "dq kernel at HS = 128");
});

Deno.test("attention: the software adapter runs the rows kernels, a GPU the tiled ones", async () => {
  const gpu = await requestGpu();
  assertEquals((await createAttention(gpu, 16)).kernels, gpu.isFallback ? "rows" : "tiled");
});

// bf16 storage: the reference gets the same bf16-rounded qkv and dout. out and dqkv are rounded
// once to bf16 (2^-9 relative), and the backward reads the rounded out (delta = dout . out, HS
// terms each off by up to 2^-9 of |dout| |out|) whose error reaches every ds of the row, so
// dqkv is held to 1e-2 relative plus 1e-2 of its largest magnitude (llm.c's bf16 checks compare
// at the tensor's scale likewise); lse stays f32 from the same inputs.
const TYPE_SHAPES = [SHAPES[2], SHAPES[6]];
for (const [kernels, s] of KERNELS.flatMap((k) => TYPE_SHAPES.map((s) => [k, s] as const))) {
  Deno.test(`attention: ${kernels} kernels, bf16 storage at B=${s.B} T=${s.T} C=${s.C} NH=${s.NH}`, async () => {
    const { B, T, C } = s;
    const qkv = roundToBf16(randomFloats(B * T * 3 * C, 1, 2));
    const dout = roundToBf16(randomFloats(B * T * C, 2));
    const gpu = await runGpu(s, qkv, dout, { type: "bf16", kernels });
    const cpu = runCpu(s, qkv, dout);
    assertClose(gpu.out, cpu.out, { rtol: 2 ** -8, atol: FORWARD_TOL.atol, label: "out" });
    assertClose(gpu.lse, cpu.lse, { ...FORWARD_TOL, label: "lse" });
    const scale = cpu.dqkv.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    assertClose(gpu.dqkv, cpu.dqkv, { rtol: 1e-2, atol: 1e-2 * scale, label: "dqkv" });
  });
}

// f16 storage: the same argument with 11-bit rounding (2^-11): out within 2^-10 relative, and
// dqkv measured at 6e-4 of its largest magnitude on lavapipe, held to 2e-3 of it (4x bf16's
// rounding is 8x finer). With f16 inner products (shader-f16) each score q.k and each dout.v
// also carries the f16 rounding of its products and of its partial sums of 16 (~17 * 2^-11 of
// those sums in the worst case, random-signed in practice): scores, and so lse, measured
// within 1.5e-3 absolute at |q|, |k| < 2 and HS up to 64, held to 4e-3; out and dqkv measured
// within 1.7e-3 and 1.3e-3 of their largest magnitudes, held to 4e-3 of it.
for (const [kernels, s] of KERNELS.flatMap((k) => TYPE_SHAPES.map((s) => [k, s] as const))) {
  for (const f16Products of [false, true]) {
    const arithmetic = f16Products ? "f16 inner products" : "f32 arithmetic";
    Deno.test(`attention: ${kernels} kernels, f16 storage, ${arithmetic}, at B=${s.B} T=${s.T} C=${s.C} NH=${s.NH}`, async () => {
      const { B, T, C } = s;
      const qkv = roundTo("f16", randomFloats(B * T * 3 * C, 1, 2));
      const dout = roundTo("f16", randomFloats(B * T * C, 2));
      const gpu = await runGpu(s, qkv, dout, { type: "f16", f16Products, kernels });
      const hasF16 = (await requestGpu()).hasF16;
      assertEquals(gpu.f16Products, f16Products && hasF16);
      const cpu = runCpu(s, qkv, dout);
      const outScale = cpu.out.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      const dScale = cpu.dqkv.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      if (gpu.f16Products) {
        assertClose(gpu.out, cpu.out, { rtol: 2 ** -10, atol: 4e-3 * outScale, label: "out" });
        assertClose(gpu.lse, cpu.lse, { rtol: FORWARD_TOL.rtol, atol: 4e-3, label: "lse" });
        assertClose(gpu.dqkv, cpu.dqkv, { rtol: 2 ** -10, atol: 4e-3 * dScale, label: "dqkv" });
        // The f16 arithmetic did run: f32 scores give lse within FORWARD_TOL, these do not.
        assert(
          gpu.lse.some((v, i) => Math.abs(v - cpu.lse[i]) > FORWARD_TOL.atol + 1e-5 * cpu.lse[i]),
          "f16 inner products gave f32-exact lse",
        );
      } else {
        assertClose(gpu.out, cpu.out, { rtol: 2 ** -10, atol: FORWARD_TOL.atol, label: "out" });
        assertClose(gpu.lse, cpu.lse, { ...FORWARD_TOL, label: "lse" });
        assertClose(gpu.dqkv, cpu.dqkv, { rtol: 2 ** -10, atol: 2e-3 * dScale, label: "dqkv" });
      }
    });
  }
}

for (const kernels of KERNELS) {
  Deno.test(`attention: ${kernels} kernels: a future token's k and v do not change earlier outputs`, async () => {
    const s = { B: 1, T: 40, C: 16, NH: 2 };
    const { T, C } = s;
    const future = 21;
    const qkv = randomFloats(T * 3 * C, 3, 2);
    const dout = randomFloats(T * C, 4);
    const changed = qkv.slice();
    for (let i = C; i < 3 * C; i++) changed[future * 3 * C + i] += 1; // k and v of every head
    const before = await runGpu(s, qkv, dout, { kernels });
    const after = await runGpu(s, changed, dout, { kernels });
    assertEquals(after.out.slice(0, future * C), before.out.slice(0, future * C));
    assert(
      after.out.slice(future * C).some((v, i) => v !== before.out[future * C + i]),
      "the change must reach the outputs at and after the changed token",
    );
  });

  for (const type of ["f32", "bf16", "f16"] as const) {
    Deno.test(`attention: ${kernels} kernels: repeated runs are bit-identical in ${type}`, async () => {
      const s = { B: 2, T: 70, C: 128, NH: 2 };
      const qkv = roundTo(type, randomFloats(s.B * s.T * 3 * s.C, 5, 2));
      const dout = roundTo(type, randomFloats(s.B * s.T * s.C, 6));
      const first = await runGpu(s, qkv, dout, { kernels, type });
      const second = await runGpu(s, qkv, dout, { kernels, type });
      assertEquals(second.out, first.out);
      assertEquals(second.lse, first.lse);
      assertEquals(second.dqkv, first.dqkv);
    });
  }

  Deno.test(`attention: ${kernels} kernels: tensors over the binding limit are split by batch rows`, async () => {
    // Per batch row: qkv 3072 B, out 1024 B, lse 128 B; chunks of 2 rows keep offsets 256-aligned.
    const s = { B: 5, T: 16, C: 16, NH: 2 };
    const qkv = randomFloats(s.B * s.T * 3 * s.C, 7, 2);
    const dout = randomFloats(s.B * s.T * s.C, 8);
    const whole = await runGpu(s, qkv, dout, { kernels });
    const split = await runGpu(s, qkv, dout, { kernels, maxBinding: 3 * 3072 });
    assertEquals(split.out, whole.out);
    assertEquals(split.lse, whole.lse);
    assertEquals(split.dqkv, whole.dqkv);
    const cpu = runCpu(s, qkv, dout);
    assertClose(split.dqkv, cpu.dqkv, { ...BACKWARD_TOL, label: "dqkv" });

    const gpu = await requestGpu();
    const op = await createAttention(gpu, 8, { kernels, maxBinding: 3072 }); // lse offset 128 B
    const big = createBuffer(gpu, 5 * 3072, "big");
    assertThrows(
      () => op.forward({ out: big, lse: big, qkv: big }, s),
      RangeError,
      "cannot be split by batch rows",
    );
    big.destroy();
  });
}

Deno.test("attention: bad shapes are rejected with the reason", async () => {
  const gpu = await requestGpu();
  await assertRejects(() => createAttention(gpu, 6), RangeError, "HS = C / NH = 6");
  const op = await createAttention(gpu, 8);
  const small = createBuffer(gpu, 64, "small");
  const b = { out: small, lse: small, qkv: small };
  assertThrows(() => op.forward(b, { B: 1, T: 4, C: 12, NH: 2 }), RangeError, "NH * HS");
  assertThrows(() => op.forward(b, { B: 1, T: 4, C: 16, NH: 2 }), RangeError, "outside");
  small.destroy();
});

import { assertClose, assertEquals, assertThrows } from "./_assert.ts";
import { randomFloats } from "./_random.ts";
import { requestGpu, withErrorScope } from "../src/gpu/device.ts";
import { readF32, uploadBuffer } from "../src/gpu/buffer.ts";
import { submit } from "../src/gpu/kernel.ts";
import { readStorage, roundTo, type StorageType, uploadStorage } from "../src/gpu/storage.ts";
import { buildTokenIndex, createEmbedding } from "../src/model/embedding.ts";
import { embeddingBackward, embeddingForward } from "../src/model/reference/embedding.ts";

// Forward is one f32 add per element: bit-identical to the reference. The backward sums a
// token's positions before adding them to dwte (the reference adds one at a time): 1e-5
// relative + 1e-6 absolute. bf16 storage (out, wte, wpe, dout; the reference gets the same
// rounded inputs): out is the f32 sum rounded once to bf16, bit-identical to the reference's
// sum rounded; dwte and dwpe are f32 sums of the same bf16 values, with the f32 tolerance.
// f16 storage likewise (rounded to nearest even as the reference's roundTo: bit-identical).

async function check(
  B: number,
  T: number,
  C: number,
  V: number,
  tokenList: number[],
  maxBinding?: number,
  type: StorageType = "f32",
  outType: StorageType = type,
) {
  const gpu = await requestGpu();
  const op = await createEmbedding(gpu, { maxBinding, type, outType });
  const stored = (x: Float32Array<ArrayBuffer>) => roundTo(type, x);
  const up = (x: Float32Array, label: string) => uploadStorage(gpu, type, x, label);
  const N = B * T, maxT = T + 2;
  const tokens = new Uint32Array(tokenList);
  const wte = stored(randomFloats(V * C, 1, 0.5)),
    wpe = stored(randomFloats(maxT * C, 2, 0.5)),
    dy = stored(randomFloats(N * C, 3, 0.5));
  const dwte0 = randomFloats(V * C, 4, 0.5), dwpe0 = randomFloats(maxT * C, 5, 0.5);
  const buf = {
    out: uploadStorage(gpu, outType, new Float32Array(N * C), "out"),
    tokens: uploadBuffer(gpu, tokens, "tokens"),
    index: uploadBuffer(gpu, buildTokenIndex(tokens, V), "token index"),
    wte: up(wte, "wte"),
    wpe: up(wpe, "wpe"),
    dout: up(dy, "dout"),
    dwte: uploadBuffer(gpu, dwte0, "dwte"),
    dwpe: uploadBuffer(gpu, dwpe0, "dwpe"),
  };
  const s = { B, T, C, V };
  const dispatches = [...op.forward(buf, s), ...op.backward(buf, s)];
  await withErrorScope(gpu, "embedding", () => submit(gpu, dispatches));
  const out = new Float32Array(N * C), dwte = dwte0.slice(), dwpe = dwpe0.slice();
  embeddingForward(out, tokens, wte, wpe, B, T, C);
  embeddingBackward(dwte, dwpe, dy, tokens, B, T, C);
  assertEquals(await readStorage(gpu, outType, buf.out, N * C), roundTo(outType, out));
  const got = {
    dwte: (await readF32(gpu, buf.dwte)).slice(0, V * C),
    dwpe: (await readF32(gpu, buf.dwpe)).slice(0, maxT * C),
  };
  const tol = { rtol: 1e-5, atol: 1e-6 };
  assertClose(got.dwte, dwte, { ...tol, label: "dwte" });
  assertClose(got.dwpe, dwpe, { ...tol, label: "dwpe" });
  for (const b of Object.values(buf)) b.destroy();
  for (const d of dispatches) d.destroy();
  return { dispatches: dispatches.length, got };
}

Deno.test("embedding: B=2 T=5 C=13 V=37 with repeated tokens, bit-identical repeats", async () => {
  const tokens = [5, 36, 5, 0, 7, 7, 7, 36, 1, 5];
  const first = await check(2, 5, 13, 37, tokens);
  const second = await check(2, 5, 13, 37, tokens);
  assertEquals(second.got, first.got);
});

Deno.test("embedding: wte bound in three row ranges (small fake max binding)", async () => {
  // 64 rows of 13 floats per binding: ranges [0,64), [64,128), [128,150).
  const { dispatches } = await check(
    2,
    5,
    13,
    150,
    [149, 3, 64, 63, 3, 128, 149, 64, 0, 127],
    64 * 13 * 4,
  );
  assertEquals(dispatches, 3 + 1 + 3); // forward per range, dwpe, dwte per range
});

Deno.test("embedding: token index groups positions by token in position order", () => {
  const index = buildTokenIndex([4, 2, 4, 4, 0], 5);
  // [U=3, starts 0 1 2 5 (then unused), order: 4 | 1 | 0 2 3]
  assertEquals([...index], [3, 0, 1, 2, 5, 0, 0, 4, 1, 0, 2, 3]);
  assertThrows(() => buildTokenIndex([1, 5], 5), RangeError, "token 5 at position 1");
});

for (const type of ["bf16", "f16"] as const) {
  Deno.test(`embedding: ${type} storage, wte bound in row ranges`, async () => {
    // 16-bit rows of 26 bytes: 128 rows per range in the forward, 64 f32 rows of dwte.
    const { dispatches } = await check(
      2,
      5,
      13,
      150,
      [149, 3, 64, 63, 3, 128, 149, 64, 0, 127],
      64 * 13 * 4,
      type,
    );
    assertEquals(dispatches, 2 + 1 + 3);
  });
}

// An f16 model's embedding writes the f32 residual stream: the f32 sum of the f16 wte and wpe,
// bit-identical to the reference, unrounded.
Deno.test("embedding: f16 weights into an f32 output (the residual stream)", async () => {
  await check(2, 5, 12, 37, [36, 3, 7, 7, 0, 36, 1, 2, 3, 4], undefined, "f16", "f32");
});

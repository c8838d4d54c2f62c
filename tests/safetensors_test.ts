import { encodeHeader, SafetensorsReader, writeSafetensors } from "../src/io/safetensors.ts";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { join } from "node:path";

const dir = await Deno.makeTempDir({ prefix: "safetensors_test_" });

/** A file made by hand from a header object and data bytes (not through the writer). */
async function rawFile(name: string, header: unknown, data: Uint8Array, headerText?: string) {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  const path = join(dir, name);
  await Deno.writeFile(path, out);
  return path;
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

Deno.test("safetensors: writer output matches bytes derived by hand from the spec", async () => {
  const path = join(dir, "golden.safetensors");
  await writeSafetensors(path, [
    { name: "a", dtype: "F32", shape: [2], data: new Float32Array([1, -2]) },
  ], { k: "v" });
  const json = '{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  assertEquals(json.length, 79); // padded with 1 space to 80
  const want = [80, 0, 0, 0, 0, 0, 0, 0, ...new TextEncoder().encode(json), 0x20];
  want.push(0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0); // 1.0f and -2.0f little-endian
  assertEquals([...await Deno.readFile(path)], want);
});

Deno.test("safetensors: round trip of every dtype, metadata, order", async () => {
  const path = join(dir, "all.safetensors");
  const tensors = [
    { name: "w", dtype: "F32" as const, data: new Float32Array([0.5, -1.25, 3e-8, 7]) },
    { name: "i32", dtype: "I32" as const, data: new Int32Array([-3, 2_000_000_000]) },
    { name: "i64", dtype: "I64" as const, data: new BigInt64Array([-5n, 1n << 40n]) },
    { name: "u8", dtype: "U8" as const, data: new Uint8Array([0, 255, 7]) },
    { name: "u16", dtype: "U16" as const, data: new Uint16Array([65535, 1]) },
    { name: "u32", dtype: "U32" as const, data: new Uint32Array([4_000_000_000]) },
    { name: "empty", dtype: "F32" as const, data: new Float32Array(0) },
  ];
  await writeSafetensors(
    path,
    tensors.map((t) => ({ ...t, shape: [t.data.length] })),
    { step: "12", config: '{"a":1}' },
  );
  using r = await SafetensorsReader.open(path);
  assertEquals(r.names(), tensors.map((t) => t.name));
  assertEquals(r.metadata, { step: "12", config: '{"a":1}' });
  for (const t of tensors) {
    assertEquals(await r.readBytes(t.name), bytesOf(t.data));
    const want = Array.from(t.data as ArrayLike<number | bigint>, Number);
    assertEquals(Array.from(await r.readF32(t.name)), Array.from(Float32Array.from(want)));
  }
  assertEquals(r.info("w").shape, [4]);
});

Deno.test("safetensors: F16 and BF16 convert exactly to f32, also across chunks", async () => {
  // f16: 1, -2, 65504 (max), 2^-24 (smallest subnormal), +inf, NaN, -0.
  const f16 = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x7e00, 0x8000]);
  // bf16: 1, 3.140625, -inf.
  const bf16 = new Uint16Array([0x3f80, 0x4049, 0xff80]);
  // Large enough for several 8 MiB conversion chunks: element i is f16 bits (i mod 2^15).
  const big = new Uint16Array(9_000_000).map((_, i) => i & 0x7fff);
  const data = new Uint8Array(f16.byteLength + bf16.byteLength + big.byteLength);
  data.set(bytesOf(f16), 0);
  data.set(bytesOf(bf16), f16.byteLength);
  data.set(bytesOf(big), f16.byteLength + bf16.byteLength);
  const a = f16.byteLength, b = a + bf16.byteLength;
  const path = await rawFile("half.safetensors", {
    h: { dtype: "F16", shape: [7], data_offsets: [0, a] },
    b: { dtype: "BF16", shape: [3], data_offsets: [a, b] },
    big: { dtype: "F16", shape: [3000, 3000], data_offsets: [b, data.length] },
  }, data);
  using r = await SafetensorsReader.open(path);
  assertEquals(Array.from(await r.readF32("h")), [1, -2, 65504, 2 ** -24, Infinity, NaN, -0]);
  assertEquals(Array.from(await r.readF32("b")), [1, 3.140625, -Infinity]);
  const got = await r.readF32("big");
  for (const i of [0, 15360, 4_194_303, 4_194_304, 8_999_999]) {
    const h = i & 0x7fff, exp = h >> 10, frac = h & 0x3ff;
    const want = exp === 0
      ? frac * 2 ** -24
      : exp === 31
      ? (frac ? NaN : Infinity)
      : (1 + frac / 1024) * 2 ** (exp - 15);
    assertEquals(got[i], want, `element ${i}`);
  }
});

Deno.test("safetensors: reads into a caller's subarray; sources are fetched lazily in order", async () => {
  const path = join(dir, "lazy.safetensors");
  const order: string[] = [];
  const source = (name: string, values: number[]) => ({
    name,
    dtype: "F32" as const,
    shape: [values.length],
    data: () => {
      order.push(name);
      return new Float32Array(values);
    },
  });
  await writeSafetensors(path, [source("x", [1, 2, 3]), source("y", [4, 5])]);
  assertEquals(order, ["x", "y"]);
  const flat = new Float32Array(7).fill(-1);
  using r = await SafetensorsReader.open(path);
  // Concurrent reads must not interleave their seeks.
  await Promise.all([r.readF32("y", flat.subarray(1, 3)), r.readF32("x", flat.subarray(4, 7))]);
  assertEquals(Array.from(flat), [-1, 4, 5, -1, 1, 2, 3]);
  await assertRejects(() => r.readF32("x", new Float32Array(2)), Error, "destination 2");
  await assertRejects(() => r.readF32("nope"), Error, 'no tensor named "nope"');
});

Deno.test("safetensors: a failed write leaves the old file and no temporary", async () => {
  const path = join(dir, "keep.safetensors");
  await writeSafetensors(path, [{ name: "a", dtype: "U8", shape: [1], data: new Uint8Array(1) }]);
  const before = await Deno.readFile(path);
  await assertRejects(
    () =>
      writeSafetensors(path, [{
        name: "a",
        dtype: "F32",
        shape: [2, 2],
        data: new Float32Array(3),
      }]),
    Error,
    'keep.safetensors: tensor "a" (F32 [2,2]) needs 16 bytes, got 12',
  );
  assertEquals(await Deno.readFile(path), before);
  const names = [...Deno.readDirSync(dir)].map((e) => e.name);
  assert(!names.some((n) => n.includes(".tmp-")), `temporary left: ${names}`);
});

Deno.test("safetensors: header encoding rejects bad input", () => {
  const t = (name: string, shape: number[]) => ({ name, dtype: "F32" as const, shape });
  const bad = (
    tensors: { name: string; dtype: "F32"; shape: number[] }[],
    includes: string,
  ) => {
    try {
      encodeHeader(tensors, undefined, "f.safetensors");
    } catch (e) {
      assert((e as Error).message.includes(includes), (e as Error).message);
      return;
    }
    throw new Error(`expected an error including "${includes}"`);
  };
  bad([t("a", [1]), t("a", [2])], "reserved or repeated");
  bad([t("__metadata__", [1])], "reserved or repeated");
  bad([t("a", [-1])], "bad shape");
});

Deno.test("safetensors: corrupt files give errors naming the file and the reason", async (t) => {
  const four = new Uint8Array(16);
  const ok = { a: { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] } };
  const cases: [string, () => Promise<string>, string][] = [
    ["tiny", async () => {
      const p = join(dir, "tiny.safetensors");
      await Deno.writeFile(p, new Uint8Array(5));
      return p;
    }, "truncated safetensors file (5 bytes)"],
    ["header past the end", async () => {
      const p = await rawFile("hdr.safetensors", ok, four);
      const bytes = await Deno.readFile(p);
      await Deno.writeFile(p, bytes.subarray(0, 30));
      return p;
    }, "truncated or corrupt safetensors header"],
    ["bad json", () => rawFile("json.safetensors", null, four, '{"a": '), "not valid JSON"],
    ["not an object", () => rawFile("arr.safetensors", [1], four), "not a JSON object"],
    ["dtype", () =>
      rawFile(
        "dtype.safetensors",
        { a: { dtype: "F64", shape: [2], data_offsets: [0, 16] } },
        four,
      ), 'tensor "a": unknown dtype "F64"'],
    ["size mismatch", () =>
      rawFile(
        "size.safetensors",
        { a: { dtype: "F32", shape: [3], data_offsets: [0, 16] } },
        four,
      ), "F32 [3] needs 12 bytes, data_offsets [0, 16] hold 16"],
    ["overlap", () =>
      rawFile("overlap.safetensors", {
        a: { dtype: "F32", shape: [3], data_offsets: [0, 12] },
        b: { dtype: "F32", shape: [2], data_offsets: [8, 16] },
      }, four), 'tensor "b" overlaps'],
    ["gap", () =>
      rawFile(
        "gap.safetensors",
        { a: { dtype: "F32", shape: [3], data_offsets: [4, 16] } },
        four,
      ), "gap before tensor"],
    ["out of range", () =>
      rawFile(
        "range.safetensors",
        { a: { dtype: "F32", shape: [8], data_offsets: [0, 32] } },
        four,
      ), "truncated: tensors need 32 data bytes, the file has 16"],
    ["trailing data", () =>
      rawFile(
        "trail.safetensors",
        { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } },
        four,
      ), "(trailing data)"],
    ["bad offsets", () =>
      rawFile(
        "offs.safetensors",
        { a: { dtype: "F32", shape: [2], data_offsets: [8, 0] } },
        four,
      ), "bad data_offsets"],
    [
      "metadata value",
      () => rawFile("meta.safetensors", { ...ok, __metadata__: { n: 1 } }, four),
      '"n" is not a string',
    ],
  ];
  for (const [label, make, includes] of cases) {
    await t.step(label, async () => {
      const path = await make();
      await assertRejects(() => SafetensorsReader.open(path), Error, includes);
      await assertRejects(() => SafetensorsReader.open(path), Error, path);
    });
  }
});

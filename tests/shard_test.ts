import { join } from "node:path";
import { assertEquals, assertThrows } from "./_assert.ts";
import {
  SHARD_HEADER_BYTES,
  SHARD_MAGIC,
  ShardError,
  shardHeader,
  shardInfo,
  ShardReader,
} from "../src/data/shard.ts";
import { listSplit } from "../src/data/splits.ts";

/** An llm.c shard's bytes, built by hand (not with shardHeader) as an independent check. */
function llmcBytes(
  tokens: number[],
  { magic = SHARD_MAGIC, version = 1, count = tokens.length } = {},
) {
  const bytes = new Uint8Array(1024 + 2 * tokens.length);
  const view = new DataView(bytes.buffer);
  view.setInt32(0, magic, true);
  view.setInt32(4, version, true);
  view.setInt32(8, count, true);
  tokens.forEach((t, i) => view.setUint16(1024 + 2 * i, t, true));
  return bytes;
}

function rawBytes(tokens: number[]): Uint8Array {
  const bytes = new Uint8Array(2 * tokens.length);
  tokens.forEach((t, i) => new DataView(bytes.buffer).setUint16(2 * i, t, true));
  return bytes;
}

Deno.test("shard header layout matches llm.c", () => {
  const header = shardHeader(12345);
  assertEquals(header.length, SHARD_HEADER_BYTES);
  assertEquals(header, llmcBytes(new Array(12345).fill(0)).subarray(0, 1024));
});

Deno.test("shard round trip: llm.c and headerless files read back the same tokens", async () => {
  const dir = await Deno.makeTempDir();
  const tokens = [50256, 0, 1, 65535 % 50257, 50255, 42, 7];
  const llmc = join(dir, "a_train_000001.bin");
  const raw = join(dir, "train.bin");
  Deno.writeFileSync(llmc, new Uint8Array([...shardHeader(tokens.length), ...rawBytes(tokens)]));
  Deno.writeFileSync(raw, rawBytes(tokens));
  for (const [path, format, offset] of [[llmc, "llmc", 1024], [raw, "raw", 0]] as const) {
    assertEquals(shardInfo(path), { path, format, dataOffset: offset, tokens: tokens.length });
    using reader = ShardReader.open(path);
    assertEquals([...reader.read(0, new Uint32Array(tokens.length))], tokens);
    assertEquals([...reader.read(2, new Uint32Array(3))], tokens.slice(2, 5));
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bad shards: each has an error naming the file and the reason", async (t) => {
  const dir = await Deno.makeTempDir();
  Deno.mkdirSync(join(dir, "nano"));
  const cases: [string, Uint8Array, string][] = [
    ["empty.bin", new Uint8Array(0), "empty file"],
    ["nano/train.bin", new Uint8Array(7), "headerless uint16 token file with an odd byte length 7"],
    ["version.bin", llmcBytes([1, 2], { version: 2 }), "unsupported llm.c shard version 2"],
    ["short.bin", llmcBytes([1, 2, 3], { count: 5 }), "header says 5 tokens"],
    ["long.bin", llmcBytes([1, 2, 3], { count: 2 }), "header says 2 tokens"],
    ["zero.bin", llmcBytes([], { count: 0 }), "header says 0 tokens"],
    ["truncated.bin", llmcBytes([]).subarray(0, 100), "header truncated"],
  ];
  for (const [name, bytes, reason] of cases) {
    await t.step(name, () => {
      const path = join(dir, name);
      Deno.writeFileSync(path, bytes);
      assertThrows(() => ShardReader.open(path), ShardError, `${path}: `);
      assertThrows(() => ShardReader.open(path), ShardError, reason);
    });
  }
  await t.step("token >= vocab", () => {
    const path = join(dir, "vocab.bin");
    Deno.writeFileSync(path, llmcBytes([1, 50256, 50257, 3]));
    using reader = ShardReader.open(path);
    assertEquals([...reader.read(0, new Uint32Array(2))], [1, 50256]);
    assertThrows(
      () => reader.read(0, new Uint32Array(4)),
      ShardError,
      `${path}: token 50257 at position 2 is >= vocab size 50257`,
    );
    using small = ShardReader.open(path, { vocab: 100 });
    assertThrows(() => small.read(1, new Uint32Array(1)), ShardError, "token 50256 at position 1");
  });
  await t.step("token >= a model's vocabulary names the model and the data", () => {
    const path = join(dir, "d_val_000000.bin");
    Deno.writeFileSync(path, llmcBytes([1, 55433, 3]));
    const model = "the model in out/checkpoints/step_00000010.safetensors";
    using reader = ShardReader.open(path, { vocab: 50000, vocabFrom: model });
    assertThrows(
      () => reader.read(0, new Uint32Array(3)),
      ShardError,
      `${path}: token 55433 at position 1 is outside the vocabulary of ${model} (50000 ` +
        "tokens): the model's vocabulary is smaller than this data's tokens",
    );
  });
  await t.step("missing file", () => {
    assertThrows(() => shardInfo(join(dir, "nope.bin")), ShardError, "nope.bin: cannot read");
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("shard format follows the name: llm.c names need the llm.c magic, headerless only as train.bin / val.bin", async (t) => {
  const dir = await Deno.makeTempDir();
  const tokens = Array.from({ length: 600 }, (_, i) => i);
  const cases: [string, number, string][] = [
    // A zeroed magic: the 1024-byte header must not become 512 tokens.
    [`zero`, 0, "first word 0 is not the llm.c GPT-2 shard magic 20240520"],
    [`llama3`, 20240801, "first word 20240801 (llm.c's Llama-3 token shard magic"],
    [`off_by_one`, 20240521, "first word 20240521 is not the llm.c GPT-2 shard magic 20240520"],
  ];
  for (const [label, magic, reason] of cases) {
    await t.step(`llm.c name, magic ${magic}`, () => {
      for (const split of ["train_000001", "val_000000"]) {
        const path = join(dir, `${label}_${split}.bin`);
        Deno.writeFileSync(path, llmcBytes(tokens, { magic }));
        assertThrows(() => shardInfo(path), ShardError, `${path}: ${reason}`);
        assertThrows(() => shardInfo(path), ShardError, "must carry its header");
      }
    });
  }
  await t.step("headerless tokens under another name, unless the caller says raw", () => {
    const path = join(dir, "tokens.bin");
    Deno.writeFileSync(path, rawBytes(tokens));
    assertThrows(
      () => shardInfo(path),
      ShardError,
      `${path}: first word 65536 is not the llm.c GPT-2 shard magic 20240520: headerless ` +
        "token files must be named train.bin or val.bin",
    );
    assertEquals(shardInfo(path, "raw").tokens, 600);
    using reader = ShardReader.open(path, { format: "raw" });
    assertEquals([...reader.read(597, new Uint32Array(3))], [597, 598, 599]);
  });
  await t.step("an explicit llm.c format refuses a headerless train.bin", () => {
    const path = join(dir, "train.bin");
    Deno.writeFileSync(path, rawBytes(tokens));
    assertEquals(shardInfo(path).format, "raw");
    assertThrows(() => shardInfo(path, "llmc"), ShardError, "llm.c shards start with it");
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("listSplit: llm.c shards sorted, nanoGPT files, clear error when missing", async () => {
  const dir = await Deno.makeTempDir();
  for (const n of ["x_train_000002.bin", "x_val_000000.bin", "x_train_000001.bin", "notes.txt"]) {
    Deno.writeFileSync(join(dir, n), new Uint8Array(2));
  }
  assertEquals(listSplit(dir, "train"), [
    join(dir, "x_train_000001.bin"),
    join(dir, "x_train_000002.bin"),
  ]);
  assertEquals(listSplit(dir, "val"), [join(dir, "x_val_000000.bin")]);
  Deno.writeFileSync(join(dir, "y_train_000001.bin"), new Uint8Array(2));
  assertThrows(() => listSplit(dir, "train"), Error, "several datasets (x, y)");

  const nano = await Deno.makeTempDir();
  Deno.writeFileSync(join(nano, "train.bin"), new Uint8Array(2));
  assertEquals(listSplit(nano, "train"), [join(nano, "train.bin")]);
  assertThrows(() => listSplit(nano, "val"), Error, `data dir ${nano}: no val split`);
  assertThrows(() => listSplit(join(nano, "absent"), "val"), Error, "cannot list");
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(nano, { recursive: true });
});

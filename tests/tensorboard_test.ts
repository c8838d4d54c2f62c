import { crc32c, maskedCrc32c } from "../src/log/_crc32c.ts";
import { encodeEvent, readEvents, TensorBoardWriter } from "../src/log/tensorboard.ts";
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { basename, join } from "node:path";

const ascii = (s: string) => new TextEncoder().encode(s);

Deno.test("crc32c: known vectors (RFC 3720 B.4 and the check value)", () => {
  assertEquals(crc32c(ascii("123456789")), 0xe3069283);
  assertEquals(crc32c(new Uint8Array(0)), 0);
  assertEquals(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assertEquals(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assertEquals(crc32c(new Uint8Array(32).map((_, i) => i)), 0x46dd794e);
  assertEquals(crc32c(new Uint8Array(32).map((_, i) => 31 - i)), 0x113fdb5c);
  // Mask by hand: rotr(0xE3069283, 15) = 0x2507C60D; + 0xA282EAD8 = 0xC78AB0E5 (mod 2^32).
  assertEquals(maskedCrc32c(ascii("123456789")), 0xc78ab0e5);
});

Deno.test("tensorboard: a scalar event encodes to the bytes derived from the spec", () => {
  const record = encodeEvent({ wallTime: 1.5, step: 3, scalars: [{ tag: "a", value: 2 }] });
  const data = [
    ...[0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f], // wall_time (field 1, fixed64) = 1.5
    ...[0x10, 0x03], // step (field 2, varint) = 3
    ...[0x2a, 0x0a], // summary (field 5, 10 bytes)
    ...[0x0a, 0x08], //   value (field 1, 8 bytes)
    ...[0x0a, 0x01, 0x61], //     tag (field 1) = "a"
    ...[0x15, 0, 0, 0, 0x40], //     simple_value (field 2, fixed32) = 2.0f
  ];
  const len = [23, 0, 0, 0, 0, 0, 0, 0];
  const u32 = (x: number) => [x & 0xff, (x >>> 8) & 0xff, (x >>> 16) & 0xff, x >>> 24];
  assertEquals([...record], [
    ...len,
    ...u32(maskedCrc32c(new Uint8Array(len))),
    ...data,
    ...u32(maskedCrc32c(new Uint8Array(data))),
  ]);
});

Deno.test("tensorboard: writer and reader round trip; resume purge event; names", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tb_test_" });
  const logDir = join(dir, "tb");
  const w = TensorBoardWriter.create(logDir, { wallTime: 1_700_000_000.25 });
  assertEquals(basename(w.path), `events.out.tfevents.1700000000.${Deno.hostname()}`);
  w.scalars(1, { "Loss/train": 10.5, learning_rate: 1e-2 }, 1_700_000_001);
  w.scalar("Loss/eval", 3.25, 5_000_000_000, 1_700_000_002);
  w.scalar("grad_norm", NaN, 2, 1_700_000_003);
  w.sync();
  w.close();
  const events = readEvents(w.path);
  assertEquals(events[0], {
    wallTime: 1_700_000_000.25,
    step: 0,
    fileVersion: "brain.Event:2",
    scalars: [],
  });
  assertEquals(events.slice(1, 4), [
    { wallTime: 1_700_000_001, step: 1, scalars: [{ tag: "Loss/train", value: 10.5 }] },
    {
      wallTime: 1_700_000_001,
      step: 1,
      scalars: [{ tag: "learning_rate", value: Math.fround(1e-2) }],
    },
    { wallTime: 1_700_000_002, step: 5_000_000_000, scalars: [{ tag: "Loss/eval", value: 3.25 }] },
  ]);
  assert(Number.isNaN(events[4].scalars[0].value));

  // A second writer in the same second gets its own file and starts with the purge event.
  const r = TensorBoardWriter.create(logDir, { wallTime: 1_700_000_000, purgeStep: 1000 });
  r.close();
  assert(r.path !== w.path, "the second writer reuses the first file");
  assertEquals(readEvents(r.path)[1], {
    wallTime: 1_700_000_000,
    step: 1000,
    sessionStatus: 1,
    scalars: [],
  });
});

Deno.test("tensorboard: reader rejects flipped bytes and truncation, naming file and offset", async () => {
  const path = join(await Deno.makeTempDir({ prefix: "tb_bad_" }), "events.out.tfevents.1.x");
  const a = encodeEvent({ wallTime: 1, step: 1, scalars: [{ tag: "t", value: 1 }] });
  const b = encodeEvent({ wallTime: 2, step: 2, scalars: [{ tag: "t", value: 2 }] });
  const good = new Uint8Array([...a, ...b]);
  const write = (bytes: Uint8Array) => Deno.writeFileSync(path, bytes);
  write(good);
  assertEquals(readEvents(path).length, 2);
  const flipped = good.slice();
  flipped[a.length + 20] ^= 1;
  write(flipped);
  assertThrows(() => readEvents(path), Error, `${path}: record at byte ${a.length}: data CRC`);
  const badLen = good.slice();
  badLen[0] ^= 1;
  write(badLen);
  assertThrows(() => readEvents(path), Error, "record at byte 0: length CRC mismatch");
  write(good.subarray(0, good.length - 3));
  assertThrows(() => readEvents(path), Error, "truncated data");
});

import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { requestGpu } from "../src/gpu/device.ts";
import { createBuffer, subRange } from "../src/gpu/buffer.ts";
import { bindWindow, flatWindows, rowsPerWindow, unitsPerPiece } from "../src/gpu/window.ts";

Deno.test("window: bindWindow rounds the offset down and returns the remainder", async () => {
  const gpu = await requestGpu();
  const buffer = createBuffer(gpu, 4096, "window test");
  const w = bindWindow("x", subRange(buffer, 512, 2048), 70, 10, 256);
  // Element 70 of a range at byte 512 is byte 792: bound from 768, 6 elements in.
  assertEquals([w.range.offset, w.range.size, w.offset], [768, 64, 6]);
  assertThrows(
    () => bindWindow("x", subRange(buffer, 512, 2048), 510, 3, 256),
    RangeError,
    'x: needs elements [510, 513) but the binding holds 512 (buffer "window test")',
  );
  buffer.destroy();
});

Deno.test("window: rowsPerWindow leaves room for the alignment slack", () => {
  // 1024 B = 256 elements, less 63 of slack: rows of 10 every 20 elements fit 10 times.
  assertEquals(rowsPerWindow("a", 100, 10, 20, 1024, 256), 10);
  assertEquals(rowsPerWindow("a", 4, 10, 20, 1024, 256), 4);
  assertThrows(() => rowsPerWindow("a", 4, 200, 200, 1024, 256), RangeError, "a: one row of 200");
});

Deno.test("window: flatWindows have aligned bases, bounded sizes, exact cover", () => {
  const windows = flatWindows(613, 1000, 1024, 256);
  assertEquals(windows[0], { base: 576, count: 256, lo: 37, hi: 256 });
  let next = 613;
  for (const w of windows) {
    assertEquals([w.base % 64, w.base + w.lo], [0, next]);
    assert(w.count * 4 <= 1024 && w.hi === w.count);
    next = w.base + w.hi;
  }
  assertEquals(next, 1000);
  assertThrows(() => flatWindows(0, 10, 256, 256), RangeError, "more than one 256-byte block");
});

Deno.test("window: unitsPerPiece keeps every tensor's piece offsets aligned", () => {
  const split = { what: "t", unit: "rows", units: 10, unitBytes: [96, 32] };
  assertEquals(unitsPerPiece(split, 960, 256), 10); // all fit: one piece, no alignment needed
  // 96 B rows align every 8 rows, 32 B rows every 8: 9 fit, 8 keep the offsets aligned.
  assertEquals(unitsPerPiece(split, 900, 256), 8);
  assertThrows(
    () => unitsPerPiece(split, 700, 256),
    RangeError,
    "t exceeds the 700-byte binding limit and cannot be split by rows at 256-byte offsets",
  );
});

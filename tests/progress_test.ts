import { assert, assertEquals } from "./_assert.ts";
import { formatCount, formatDuration, Progress } from "../src/log/progress.ts";

/** A Progress on a fake clock that records what it writes. */
function recorder(tty: boolean, total?: number) {
  let now = 0;
  const out: string[] = [];
  const bar = new Progress({
    label: "prep",
    total,
    unit: "B",
    tty,
    write: (s) => out.push(s),
    now: () => now,
    redrawMs: 100,
    lineMs: 10_000,
  });
  return { bar, out, advance: (ms: number) => (now += ms) };
}

Deno.test("progress: terminal redraws are throttled and show rate, counters and ETA", () => {
  const { bar, out, advance } = recorder(true, 10_000_000);
  advance(50);
  bar.update(1_000_000, { docs: 10 });
  assertEquals(out.length, 0, "no redraw before redrawMs");
  advance(950); // t = 1 s
  bar.update(2_000_000, { docs: 20, tokens: 5000 });
  assertEquals(out, [
    "\r\x1b[2Kprep [####................] 20.0% 2.00 MB / 10.0 MB 2.00 MB/s | 20 docs 20 docs/s | " +
    "5.00k tokens 5.00k tokens/s | ETA 0:04",
  ]);
  advance(10);
  bar.update(3_000_000);
  assertEquals(out.length, 1);
  advance(1990); // t = 3 s
  bar.update(10_000_000, {}, "loss 3.21");
  bar.finish();
  bar.finish(); // idempotent
  assertEquals(out.length, 3);
  assertEquals(
    out[2],
    "\r\x1b[2Kprep [####################] 100.0% 10.0 MB / 10.0 MB 3.33 MB/s | 20 docs 6.67 docs/s | " +
      "5.00k tokens 1.67k tokens/s | loss 3.21 | took 0:03\n",
  );
});

Deno.test("progress: without a terminal, plain lines every lineMs; no total, no ETA", () => {
  const { bar, out, advance } = recorder(false);
  for (let s = 1; s <= 25; s++) {
    advance(1000);
    bar.update(s * 1000);
  }
  assertEquals(out.length, 2, "a line at 10 s and at 20 s");
  assertEquals(out[0], "prep 10.0 kB 1.00 kB/s | elapsed 0:10\n");
  bar.finish();
  assertEquals(out[2], "prep 25.0 kB 1.00 kB/s | took 0:25\n");
  assert(out.every((line) => !line.includes("\r")));
});

Deno.test("progress: number and duration formats", () => {
  assertEquals(formatCount(0), "0");
  assertEquals(formatCount(17, "step"), "17 step");
  assertEquals(formatCount(2.5, "step"), "2.50 step");
  assertEquals(formatCount(999_499), "999k");
  assertEquals(formatCount(999_500), "1.00M");
  assertEquals(formatCount(123_456_789, "tokens"), "123M tokens");
  assertEquals(formatCount(512, "B"), "512 B");
  assertEquals(formatCount(11_400_000, "B"), "11.4 MB");
  assertEquals(formatDuration(4.4), "0:04");
  assertEquals(formatDuration(3723), "1:02:03");
  assertEquals(formatDuration(Infinity), "?");
});

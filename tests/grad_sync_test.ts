/**
 * Bucketed gradient all-reduce (src/distributed/grad_sync.ts): the model's backward segments
 * cover every gradient exactly once, buckets group them as planned, and 2 real ranks over
 * shared memory train to the same parameters bit for bit with one bucket per segment, with one
 * bucket for all, and with the whole-buffer all-reduce, with and without accumulation.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { outputWithin, plain, REPO } from "./_dist_rank.ts";
import { requestGpu } from "../src/gpu/device.ts";
import { presetConfig } from "../src/model/config.ts";
import { GPT2 } from "../src/model/gpt2.ts";
import { mergeRanges, rangeFloats } from "../src/model/grad_segments.ts";
import { PARAM_ALIGN_FLOATS } from "../src/model/params.ts";
import { DEFAULT_BUCKET_BYTES, planBuckets } from "../src/distributed/grad_sync.ts";

/** Files `a` and `b` hold the same bytes; else names the first float that differs. */
function assertSameFloats(a: Uint8Array, b: Uint8Array, label: string): void {
  const [x, y] = [new Float32Array(a.buffer), new Float32Array(b.buffer)];
  const at = x.findIndex((v, i) => !Object.is(v, y[i]));
  assert(x.length === y.length && at < 0, `${label}: float ${at} is ${x[at]}, want ${y[at]}`);
}

Deno.test("grad segments: every gradient final in exactly one segment, in backward order", async () => {
  const gpu = await requestGpu();
  for (const bias of [true, false]) {
    const config = presetConfig("tiny", { vocabSize: 101, bias, numLayers: 3 });
    const model = await GPT2.create(gpu, config, { B: 1, T: 5 });
    try {
      const segments = model.gradSegments;
      assertEquals(segments.map((s) => s.label), [
        "head",
        "block 2",
        "block 1",
        "block 0",
        "embedding",
      ]);
      // Every tensor (with its padding) lies inside the ranges of exactly one segment.
      const owners = (offset: number) =>
        segments.filter((s) => s.ranges.some(([a, b]) => a <= offset && offset < b));
      for (const t of model.layout.tensors) {
        const end = t.offset + Math.ceil(t.size / PARAM_ALIGN_FLOATS) * PARAM_ALIGN_FLOATS - 1;
        const [first, last] = [owners(t.offset), owners(end)];
        assertEquals(first.length, 1, `${t.name} in ${first.length} segments (bias ${bias})`);
        assertEquals(last, first, `${t.name} split between segments`);
        const where = t.name.startsWith("h.") ? `block ${t.name.split(".")[1]}` : "";
        const expected = t.name.startsWith("ln_f") ? "head" : where || "embedding";
        assertEquals(first[0].label, expected, t.name);
      }
      // Together, without overlap (mergeRanges throws on one), exactly [0, totalFloats).
      const all = mergeRanges(segments.flatMap((s) => s.ranges));
      assertEquals(all, [[0, model.layout.totalFloats]]);

      // Buckets: one per segment, one for all, and merged in run order.
      assertEquals(planBuckets(segments, 1).map((b) => b.ranges), segments.map((s) => s.ranges));
      const one = planBuckets(segments, DEFAULT_BUCKET_BYTES);
      assertEquals(one.map((b) => [b.first, b.end, b.ranges]), [[0, 5, all]]);
      const floats = segments.map((s) => rangeFloats(s.ranges));
      const minBytes = 4 * (floats[0] + floats[1]); // head + block 2 close the first bucket
      const two = planBuckets(segments, minBytes);
      assertEquals(two[0].first, 0);
      assertEquals(two[0].end, 2);
      assertEquals(two[0].floats, floats[0] + floats[1]);
      assertEquals(two.at(-1)!.end, 5);
      for (let i = 1; i < two.length; i++) {
        assertEquals(two[i].first, two[i - 1].end);
        assertEquals(two[i].hostOffset, two[i - 1].hostOffset + two[i - 1].floats);
      }
      // Block 2's matrices, then its 1-D tensors and ln_f's right after them: 2 ranges, not 3.
      assertEquals(two[0].ranges.length, 2);
    } finally {
      model.destroy();
    }
  }
});

Deno.test("grad sync: 2 ranks over shm, bucketed equals the whole-buffer all-reduce bit for bit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "grad_sync_" });
  try {
    const cmd = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "tests/_grad_sync_rank.ts", "--nproc", "2", dir, "1", String(25 << 20)],
      cwd: REPO,
      stdout: "piped",
      stderr: "piped",
    });
    const out = await outputWithin(cmd, 120_000);
    const text = plain(out.stdout) + plain(out.stderr);
    assertEquals(out.code, 0, text);
    // Bucket size 1 byte: each of the 4 segments (head, 2 blocks, embedding) its own bucket.
    for (const accum of [1, 2]) {
      assert(text.includes(`accum ${accum} bucket 1: 4 buckets`), text);
      assert(text.includes(`accum ${accum} bucket ${25 << 20}: 1 buckets`), text);
    }
    const read = (name: string) => Deno.readFileSync(join(dir, name));
    for (const accum of [1, 2]) {
      const whole = read(`rank0.accum${accum}.whole.params.bin`);
      const losses = new Float32Array(read(`rank0.accum${accum}.whole.losses.bin`).buffer);
      // The weights must have moved, and the loss with them, or equality says little.
      assert(losses.every(Number.isFinite) && losses[2] !== losses[0], `losses ${losses}`);
      for (const rank of [0, 1]) {
        for (const label of ["whole", "1", String(25 << 20)]) {
          const name = `rank${rank}.accum${accum}.${label}`;
          assertSameFloats(read(`${name}.params.bin`), whole, `${name} params`);
        }
      }
      // Losses are per rank (their tokens differ) but equal across paths.
      for (const rank of [0, 1]) {
        const ref = read(`rank${rank}.accum${accum}.whole.losses.bin`);
        for (const label of ["1", String(25 << 20)]) {
          assertSameFloats(read(`rank${rank}.accum${accum}.${label}.losses.bin`), ref, label);
        }
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

import { join } from "node:path";
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { DataLoader, EvalLoader } from "../src/data/loader.ts";
import { ShardError, shardHeader } from "../src/data/shard.ts";

/** Shard s holds tokens 1000*s + i, so every token says where it came from. */
function tokensOf(s: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => 1000 * s + i);
}

function writeShard(path: string, tokens: number[], headerless = false): void {
  const body = new Uint8Array(new Uint16Array(tokens).buffer);
  Deno.writeFileSync(
    path,
    headerless ? body : new Uint8Array([...shardHeader(tokens.length), ...body]),
  );
}

/**
 * The spec, written independently of the loader: rank r, micro-step k of a shard reads from
 * (k*W + r)*B*T; all ranks go to the next shard (wrapping) when the stride's last window,
 * ending at (k*W + W)*B*T + 1, would not fit.
 */
function* expectedWindows(sizes: number[], B: number, T: number, W: number, r: number) {
  const BT = B * T;
  for (let s = 0;; s = (s + 1) % sizes.length) {
    for (let k = 0; (k * W + W) * BT + 1 <= sizes[s]; k++) {
      const start = (k * W + r) * BT;
      yield tokensOf(s, sizes[s]).slice(start, start + BT + 1);
    }
  }
}

const B = 2, T = 3; // B*T = 6

Deno.test("train loader: windows, shard advance and wrap match the spec for W=1 and W=2", async (t) => {
  const dir = await Deno.makeTempDir();
  const sizes = [20, 13, 31]; // W*B*T+1 = 13 fits every shard for W <= 2
  const files = sizes.map((_, s) => join(dir, `d_train_00000${s + 1}.bin`));
  sizes.forEach((n, s) => writeShard(files[s], tokensOf(s, n)));
  for (const W of [1, 2]) {
    for (let r = 0; r < W; r++) {
      await t.step(`W=${W} r=${r}`, () => {
        using loader = new DataLoader(files, { B, T, rank: r, worldSize: W });
        const expected = expectedWindows(sizes, B, T, W, r);
        for (let step = 0; step < 25; step++) { // > 2 passes over the data
          const window = expected.next().value!;
          const { inputs, targets } = loader.next();
          assertEquals([...inputs], window.slice(0, B * T), `step ${step} inputs`);
          assertEquals([...targets], window.slice(1), `step ${step} targets`);
        }
      });
    }
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train loader: state() / restore() gives the same following batches", async () => {
  const dir = await Deno.makeTempDir();
  const files = [join(dir, "a.bin"), join(dir, "b.bin")];
  writeShard(files[0], tokensOf(0, 40));
  writeShard(files[1], tokensOf(1, 29));
  using loader = new DataLoader(files, { B, T, rank: 1, worldSize: 2 });
  const states = [];
  const batches = [];
  for (let i = 0; i < 12; i++) {
    states.push(JSON.parse(JSON.stringify(loader.state())));
    batches.push(loader.next());
  }
  using fresh = new DataLoader(files, { B, T, rank: 1, worldSize: 2 });
  for (const i of [7, 0, 3, 11, 5]) {
    fresh.restore(states[i]);
    for (let j = i; j < 12; j++) {
      assertEquals(fresh.next(), batches[j], `restored at ${i}, batch ${j}`);
    }
  }
  assertThrows(
    () => fresh.restore({ shard: 2, position: 0 }),
    RangeError,
    "shard 2 is not in [0, 2)",
  );
  assertThrows(() => fresh.restore({ shard: 0, position: -6 }), RangeError, "position -6");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train loader: clear errors for shards too small, bad tokens, bad geometry", async () => {
  const dir = await Deno.makeTempDir();
  const small = join(dir, "small.bin");
  writeShard(small, tokensOf(0, 6));
  assertThrows(() => new DataLoader([small], { B, T }), Error, `${small}: 6 tokens, fewer than`);
  const bad = join(dir, "bad.bin");
  writeShard(bad, [...tokensOf(0, 8), 60000, ...tokensOf(0, 8)]);
  using loader = new DataLoader([bad], { B, T });
  loader.next(); // tokens 0..6 are fine
  assertThrows(() => loader.next(), ShardError, `${bad}: token 60000 at position 8`);
  assertThrows(() => new DataLoader([bad], { B, T, rank: 2, worldSize: 2 }), RangeError, "rank 2");
  assertThrows(() => new DataLoader([bad], { B: 0, T }), RangeError, "B must be");
  assertThrows(() => new DataLoader([], { B, T }), Error, "no train shards");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("eval loader: first steps batches from the start, across files, rank-sharded", async () => {
  const dir = await Deno.makeTempDir();
  const files = [join(dir, "v0.bin"), join(dir, "v1.bin")];
  writeShard(files[0], tokensOf(0, 10));
  writeShard(files[1], tokensOf(1, 20));
  const stream = [...tokensOf(0, 10), ...tokensOf(1, 20)];
  const steps = 4; // needs 4*6+1 = 25 of the 30 tokens; batch 1 spans both files
  const batchAt = (i: number) => stream.slice(i * B * T, i * B * T + B * T + 1);
  using single = new EvalLoader(files, { B, T, steps });
  assertEquals(single.count, steps);
  assertEquals(
    [...single].map((b) => [...b.inputs, b.targets.at(-1)]),
    [0, 1, 2, 3].map(batchAt),
  );
  const seen: number[][] = [];
  for (let r = 0; r < 3; r++) {
    using ranked = new EvalLoader(files, { B, T, steps, rank: r, worldSize: 3 });
    [...ranked].forEach((b, j) => {
      assertEquals([...b.inputs, b.targets.at(-1)], batchAt(j * 3 + r));
      seen.push(batchAt(j * 3 + r));
    });
  }
  assertEquals(seen.length, steps);
  assertThrows(() => new EvalLoader(files, { B, T, steps: 5 }), Error, "has 30 tokens; 5 steps");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train loader: restore deep into a 2.5M-token headerless shard", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "train.bin");
  const tokens = new Uint16Array(2_500_000).map((_, i) => i % 50000);
  Deno.writeFileSync(path, new Uint8Array(tokens.buffer));
  using loader = new DataLoader([path], { B: 4, T: 64 });
  loader.restore({ shard: 0, position: 2_000_000 });
  const { inputs } = loader.next();
  assertEquals(inputs[0], 2_000_000 % 50000);
  assert(loader.state().position === 2_000_000 + 256);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loaders: a token beyond the model's vocabulary blames the model, naming model and shard", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "d_val_000000.bin");
  writeShard(path, tokensOf(2, 40)); // tokens 2000..2039
  const vocabFrom = "the model in out/checkpoints/step_00000010.safetensors";
  const reason = `${path}: token 2000 at position 0 is outside the vocabulary of ${vocabFrom} ` +
    "(1500 tokens): the model's vocabulary is smaller than this data's tokens";
  using train = new DataLoader([path], { B, T, vocab: 1500, vocabFrom });
  assertThrows(() => train.next(), ShardError, reason);
  using val = new EvalLoader([path], { B, T, steps: 2, vocab: 1500, vocabFrom });
  assertThrows(() => val.batch(0), ShardError, reason);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loaders: headerless files only as train.bin / val.bin or with format raw", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "tokens.bin");
  writeShard(path, tokensOf(0, 20), true);
  assertThrows(() => new DataLoader([path], { B, T }), ShardError, `${path}: first word`);
  assertThrows(
    () => new EvalLoader([path], { B, T, steps: 1 }),
    ShardError,
    "train.bin or val.bin",
  );
  using train = new DataLoader([path], { B, T, format: "raw" });
  assertEquals([...train.next().inputs], tokensOf(0, 6));
  using val = new EvalLoader([path], { B, T, steps: 3, format: "raw" });
  assertEquals([...val.batch(2).targets], tokensOf(0, 19).slice(13));
  await Deno.remove(dir, { recursive: true });
});

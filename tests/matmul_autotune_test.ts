/**
 * Matmul autotuning (src/model/matmul_autotune.ts) with a real cache file in a temporary
 * REPGPT_CACHE_DIR: "off" neither times nor touches the cache; "cached" times what is missing
 * and writes it, and a second op takes it from the file without timing, bit for bit the same
 * result; "refresh" times again; a corrupt cache is reported by name and replaced.
 */
import { assertClose, assertEquals } from "./_assert.ts";
import { randomFloats } from "./_random.ts";
import { requestGpu, withErrorScope } from "../src/gpu/device.ts";
import { readF32, uploadBuffer } from "../src/gpu/buffer.ts";
import { submit } from "../src/gpu/kernel.ts";
import { createMatmul, type GemmDesc } from "../src/model/matmul.ts";
import type { AutotuneMode } from "../src/gpu/device.ts";

const [M, N, K] = [37, 45, 61];

Deno.test("matmul autotune: off, cached, a second op from the cache, refresh, a corrupt cache", async (t) => {
  const gpu = await requestGpu();
  const dir = await Deno.makeTempDir({ prefix: "repgpt_autotune_" });
  const file = `${dir}/matmul_autotune.json`;
  Deno.env.set("REPGPT_CACHE_DIR", dir);
  const a = randomFloats(M * K, 1), b = randomFloats(K * N, 2);
  const ga = uploadBuffer(gpu, a, "a"), gb = uploadBuffer(gpu, b, "b");
  const gc = uploadBuffer(gpu, new Float32Array(M * N), "c");
  const desc: GemmDesc = {
    a: ga,
    b: gb,
    c: gc,
    M,
    N,
    K,
    aLayout: "km",
    bLayout: "kn",
    label: "dW",
  };
  const want = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let sum = 0;
      for (let k = 0; k < K; k++) sum += a[k * M + m] * b[k * N + n];
      want[m * N + n] = sum;
    }
  }
  /** Creates an op in `mode`, records, tunes, records again and runs: its log and c's bits. */
  async function run(mode: AutotuneMode) {
    const lines: string[] = [];
    const op = await createMatmul(gpu, { autotune: mode, log: (l) => lines.push(l) });
    const before = op.gemm(desc);
    const pending = op.pending().length;
    const changed = await op.tune();
    const dispatches = op.gemm(desc);
    await withErrorScope(gpu, "autotuned gemm", () => submit(gpu, dispatches));
    const c = await readF32(gpu, gc);
    for (const d of [...before, ...dispatches]) d.destroy();
    op.destroy();
    return { lines, pending, changed, c, config: op.configFor(desc) };
  }
  const exists = () => Deno.stat(file).then(() => true, () => false);

  await t.step("off: no timing, no cache", async () => {
    const r = await run("off");
    assertEquals([r.lines, r.pending, r.changed, await exists()], [[], 0, false, false]);
    assertClose(r.c.subarray(0, M * N), want, { rtol: 1e-5, atol: 1e-5 });
  });
  let tuned: Float32Array;
  await t.step("cached: times the candidates, writes the cache; the result matches", async () => {
    const r = await run("cached");
    assertEquals(r.pending, 1);
    assertEquals(r.lines.length, 1, r.lines.join("\n"));
    assertEquals(
      r.lines[0].includes(`dW ${M}x${N}x${K}`) && r.lines[0].includes("(timed"),
      true,
      r.lines[0],
    );
    assertEquals(r.lines[0].includes("runners-up"), true, r.lines[0]);
    const cache = JSON.parse(await Deno.readTextFile(file));
    const entries = Object.values(cache.entries) as { splitK: number }[];
    assertEquals(entries.length, 1);
    assertEquals(entries[0].splitK, r.config.splitK);
    assertClose(r.c.subarray(0, M * N), want, { rtol: 1e-5, atol: 1e-5 });
    tuned = r.c;
  });
  await t.step("cached again: a second op reads the choice without timing, same bits", async () => {
    const before = await Deno.readFile(file);
    const r = await run("cached");
    assertEquals([r.pending, r.changed], [0, false]);
    assertEquals(r.lines.length, 1, r.lines.join("\n"));
    assertEquals(r.lines[0].includes(`cached in ${file}`), true, r.lines[0]);
    assertEquals(r.c, tuned);
    assertEquals(await Deno.readFile(file), before);
  });
  await t.step("refresh: times again and rewrites the entry", async () => {
    const r = await run("refresh");
    assertEquals(r.pending, 1);
    assertEquals(r.lines.length === 1 && r.lines[0].includes("(timed"), true, r.lines.join("\n"));
    assertClose(r.c.subarray(0, M * N), want, { rtol: 1e-5, atol: 1e-5 });
  });
  await t.step("a corrupt cache is reported by name, retuned and replaced", async () => {
    await Deno.writeTextFile(file, '{"version": 1, "entries": {');
    const r = await run("cached");
    assertEquals(r.lines[0].includes(`ignoring the cache ${file}: not JSON`), true, r.lines[0]);
    assertEquals(r.lines.at(-1)!.includes("(timed"), true, r.lines.join("\n"));
    assertEquals(Object.keys(JSON.parse(await Deno.readTextFile(file)).entries).length, 1);
    assertClose(r.c.subarray(0, M * N), want, { rtol: 1e-5, atol: 1e-5 });
  });
  await t.step("a product with an offset and a wider c is timed on packed operands", async () => {
    // c inside a larger buffer: ldc > N and an offset, which the timing's scratch c lacks.
    const ldc = N + 7, cOffset = 16;
    const wide = uploadBuffer(gpu, new Float32Array(cOffset + M * ldc), "wide c");
    const op = await createMatmul(gpu, { autotune: "refresh", log: () => {} });
    const strided = { ...desc, c: wide, ldc, cOffset };
    const before = op.gemm(strided);
    await op.tune();
    const dispatches = op.gemm(strided);
    await withErrorScope(gpu, "strided gemm", () => submit(gpu, dispatches));
    const got = await readF32(gpu, wide);
    const rows = Float32Array.from({ length: M * N }, (_, i) => {
      return got[cOffset + Math.floor(i / N) * ldc + i % N];
    });
    assertClose(rows, want, { rtol: 1e-5, atol: 1e-5 });
    for (const d of [...before, ...dispatches]) d.destroy();
    op.destroy();
    wide.destroy();
  });
  Deno.env.delete("REPGPT_CACHE_DIR");
  for (const x of [ga, gb, gc]) x.destroy();
  await Deno.remove(dir, { recursive: true });
});

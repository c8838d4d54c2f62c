/**
 * `deno task bench kernels`: GFLOP/s of the matmul kernels at GPT-2 124M's linear-layer shapes
 * (forward, dinp, dweight), side by side with a naive one-thread-per-output kernel, and MFU
 * against the adapter's f32 FMA peak.
 *
 *   --batch-size B   --seq-len T   rows N = B*T (default 1 x 128 on a software adapter,
 *                                  16 x 1024 on a GPU)
 *   --variant NAME   tile variant (regs | tiled; default per adapter)
 *   --tiles E:WX,WY,TM,TN,BK       a custom tile configuration, e.g. regs:8,8,4,4,4
 *   --k-chunk K      largest K per pass (default per tiles, see MatmulTiles.kChunk; a value
 *                    above every K, e.g. 100000, runs each product in one pass)
 *   --trials K       timed trials per kernel, the median is printed (default 3)
 *   --peak-tflops X  f32 peak for MFU when the adapter is not in the table
 *   --no-naive       skip the naive baseline (slow at GPU sizes on a CPU adapter)
 *   --precision LIST storage of the operands, comma-separated, each timed side by side:
 *                    f32, bf16 (f32 arithmetic), f16 (f16 products on a device with
 *                    shader-f16, else f32 arithmetic); default f32. dweight accumulates
 *                    into f32 in every precision, as in training.
 *   --autotune MODE  off | cached | refresh: each product's configuration is tuned (or read
 *                    from the cache) before it is timed (default off: the fixed defaults);
 *                    not with --tiles, --variant or --k-chunk, which fix the configuration
 *
 * The whole training step (forward + classifier + backward) is timed by `bench model`
 * (src/commands/bench/model.ts), with {@link timeGpu} from here.
 */
import { parseArgs } from "node:util";
import { type Gpu, requestGpu } from "../../gpu/device.ts";
import { classifierScratchBytes } from "../../model/classifier.ts";
import { createBuffer } from "../../gpu/buffer.ts";
import { type Dispatch, Kernel, submit } from "../../gpu/kernel.ts";
import { storageBytes, type StorageType } from "../../gpu/storage.ts";
import { createMatmul, type GemmDesc, type MatmulOp } from "../../model/matmul.ts";
import { defaultTiles, MATMUL_VARIANTS, type MatmulTiles } from "../../model/matmul_tiles.ts";
import { peakTflops } from "../../train/mfu.ts";
import { autotuneMode } from "../autotune_flag.ts";
import { UsageError } from "../flags.ts";

/** GPT-2 124M's linear layers: name, C (inputs), OC (outputs). */
const SHAPES: [string, number, number][] = [
  ["qkv", 768, 2304],
  ["attn proj", 768, 768],
  ["fc", 768, 3072],
  ["fc proj", 3072, 768],
  ["lm_head", 768, 50304],
];

/** The baseline: one thread per output, a plain loop over K. Not product code. */
const NAIVE = `
struct Params { M: u32, N: u32, K: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> c: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
override A_KM: bool = false;
override B_NK: bool = true;
@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let m = g.y;
  let n = g.x;
  if (m >= p.M || n >= p.N) { return; }
  var sum = 0.0;
  for (var k = 0u; k < p.K; k++) {
    var av: f32;
    var bv: f32;
    if (A_KM) { av = a[k * p.M + m]; } else { av = a[m * p.K + k]; }
    if (B_NK) { bv = b[n * p.K + k]; } else { bv = b[k * p.N + n]; }
    sum += av * bv;
  }
  c[m * p.N + n] = sum;
}`;

/** Seconds per call of `run` (which submits work): the median of `trials` timed batches. */
export async function timeGpu(gpu: Gpu, run: () => void, trials = 3): Promise<number> {
  run();
  let t0 = performance.now();
  await gpu.device.queue.onSubmittedWorkDone();
  const once = (performance.now() - t0) / 1000;
  // Batches of about 0.5 s so the ~12 ms of onSubmittedWorkDone stays small.
  const reps = Math.max(1, Math.min(100, Math.round(0.5 / Math.max(once, 1e-4))));
  const times: number[] = [];
  for (let t = 0; t < trials; t++) {
    t0 = performance.now();
    for (let r = 0; r < reps; r++) run();
    await gpu.device.queue.onSubmittedWorkDone();
    times.push((performance.now() - t0) / 1000 / reps);
  }
  gpu.throwIfFailed("timing");
  times.sort((x, y) => x - y);
  return times[Math.floor(times.length / 2)];
}

function parseTiles(spec: string): MatmulTiles {
  const m = /^(regs|tiled):(\d+),(\d+),(\d+),(\d+),(\d+)$/.exec(spec);
  if (!m) throw new Error(`--tiles "${spec}": expected ENTRY:WX,WY,TM,TN,BK e.g. regs:8,8,4,4,4`);
  const [WX, WY, TM, TN, BK] = m.slice(2).map(Number);
  return { entry: m[1] as MatmulTiles["entry"], WX, WY, TM, TN, BK };
}

const PRECISIONS: readonly StorageType[] = ["f32", "bf16", "f16"];

function parsePrecisions(value: string | undefined): StorageType[] {
  const list = (value ?? "f32").split(",").map((p) => p.trim());
  for (const p of list) {
    if (!PRECISIONS.includes(p as StorageType)) {
      throw new Error(`--precision ${value}: "${p}" is not one of ${PRECISIONS.join(", ")}`);
    }
  }
  return [...new Set(list)] as StorageType[];
}

function positive(flag: string, value: string | undefined, fallback: number, integer = true) {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!(n > 0) || (integer && !Number.isInteger(n))) {
    throw new Error(`--${flag} ${value}: expected a positive ${integer ? "integer" : "number"}`);
  }
  return n;
}

/** Entry point of `deno task bench kernels`. */
export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      "batch-size": { type: "string" },
      "seq-len": { type: "string" },
      variant: { type: "string" },
      tiles: { type: "string" },
      "k-chunk": { type: "string" },
      trials: { type: "string" },
      "peak-tflops": { type: "string" },
      "no-naive": { type: "boolean" },
      precision: { type: "string" },
      autotune: { type: "string", default: "off" },
    },
  });
  const precisions = parsePrecisions(values.precision);
  const autotune = autotuneMode(values.autotune);
  if (autotune !== "off" && (values.tiles || values.variant || values["k-chunk"])) {
    throw new UsageError(
      `--autotune ${autotune}: --tiles, --variant and --k-chunk fix the configuration; ` +
        "give --autotune off or none of them",
    );
  }
  const gpu = await requestGpu({ autotune });
  const B = positive("batch-size", values["batch-size"], gpu.isFallback ? 1 : 16);
  const T = positive("seq-len", values["seq-len"], gpu.isFallback ? 128 : 1024);
  const trials = positive("trials", values.trials, 3);
  let tiles: MatmulTiles | undefined;
  if (values.tiles) tiles = parseTiles(values.tiles);
  else if (values.variant) {
    tiles = MATMUL_VARIANTS[values.variant];
    if (!tiles) {
      throw new Error(
        `--variant ${values.variant}: expected one of ${Object.keys(MATMUL_VARIANTS).join(", ")}`,
      );
    }
  }
  if (values["k-chunk"]) {
    tiles = { ...(tiles ?? defaultTiles(gpu)), kChunk: positive("k-chunk", values["k-chunk"], 0) };
  }
  const peak = values["peak-tflops"]
    ? positive("peak-tflops", values["peak-tflops"], 0, false)
    : peakTflops(gpu.name);
  const ops = new Map<StorageType, MatmulOp>();
  for (const type of precisions) ops.set(type, await createMatmul(gpu, { tiles, type }));
  const op = ops.get(precisions[0])!;
  const naive = new Map<string, Kernel>();
  for (const layout of ["mknk", "mkkn", "kmkn"]) {
    naive.set(
      layout,
      await Kernel.create(gpu, {
        label: `naive matmul ${layout}`,
        code: NAIVE,
        constants: { A_KM: layout.startsWith("km") ? 1 : 0, B_NK: layout.endsWith("nk") ? 1 : 0 },
      }),
    );
  }
  const N = B * T;
  console.log(
    `adapter: ${gpu.name}${gpu.isFallback ? " (software)" : ""}; tiles ${
      JSON.stringify(op.tiles)
    }` +
      `; N = B*T = ${B}*${T}; f32 peak ${peak ? `${peak} TFLOP/s` : "unknown (no MFU)"}` +
      `; load average ${Deno.loadavg()[0].toFixed(1)} on ${navigator.hardwareConcurrency} CPUs` +
      (ops.get("f16") ? `; f16 products in ${ops.get("f16")!.f16Products ? "f16" : "f32"}` : ""),
  );
  const header = ["shape", "product", "M x N x K"];
  for (const p of precisions) header.push(`${p} ms`, `${p} GFLOP/s`);
  header.push("naive GFLOP/s", `x naive (${precisions[0]})`);
  if (peak) header.push(`MFU (${precisions[0]})`);
  const rows: string[][] = [header];
  let totalFlops = 0;
  const totalSeconds = new Map(precisions.map((p) => [p, 0]));
  for (const [name, C, OC] of SHAPES) {
    // lm_head runs in the classifier's row chunks (their budget comes from the device).
    const rowsHere = name === "lm_head" ? classifierScratchBytes(gpu, N, OC) / (OC * 4) : N;
    // Buffers sized for f32 serve every precision (16-bit tensors use their first half).
    const buf = (n: number, label: string) => createBuffer(gpu, storageBytes("f32", n), label);
    const inp = buf(rowsHere * C, "inp"), weight = buf(OC * C, "weight");
    const out = buf(rowsHere * OC, "out"), dinp = buf(rowsHere * C, "dinp");
    const dweight = buf(OC * C, "dweight");
    const products: [string, Omit<GemmDesc, "aLayout" | "bLayout">, string][] = [
      ["forward", { c: out, a: inp, b: weight, M: rowsHere, N: OC, K: C }, "mknk"],
      ["dinp", { c: dinp, a: out, b: weight, M: rowsHere, N: C, K: OC }, "mkkn"],
      ["dweight", { c: dweight, a: out, b: inp, M: OC, N: C, K: rowsHere }, "kmkn"],
    ];
    for (const [product, d, layout] of products) {
      const desc: GemmDesc = {
        ...d,
        aLayout: layout.slice(0, 2) as GemmDesc["aLayout"],
        bLayout: layout.slice(2) as GemmDesc["bLayout"],
      };
      const flops = 2 * d.M * d.N * d.K;
      totalFlops += flops;
      const timed: string[] = [];
      let seconds = NaN;
      for (const type of precisions) {
        const c: StorageType = product === "dweight" ? "f32" : type;
        const typed = { ...desc, types: { a: type, b: type, c } };
        await ops.get(type)!.tune([typed]); // nothing unless --autotune
        const tuned = ops.get(type)!.gemm(typed);
        const s = await timeGpu(gpu, () => submit(gpu, tuned), trials);
        destroyAll(tuned);
        totalSeconds.set(type, totalSeconds.get(type)! + s);
        timed.push((s * 1e3).toFixed(2), (flops / s / 1e9).toFixed(1));
        if (type === precisions[0]) seconds = s;
      }
      let naiveGflops = NaN;
      const fitsNaive = [d.a, d.b, d.c].every((b) => b.size <= gpu.maxBinding);
      if (!values["no-naive"] && fitsNaive) {
        const naiveDispatch = naive.get(layout)!.bind(
          [Math.ceil(d.N / 16), Math.ceil(d.M / 16)],
          [d.c, d.a, d.b],
          new Uint32Array([d.M, d.N, d.K]),
        );
        naiveGflops = flops / await timeGpu(gpu, () => submit(gpu, [naiveDispatch]), trials) /
          1e9;
        naiveDispatch.destroy();
      }
      const gflops = flops / seconds / 1e9;
      const row = [
        `${name}${rowsHere < N ? ` (${rowsHere} rows)` : ""}`,
        product,
        `${d.M} x ${d.N} x ${d.K}`,
        ...timed,
        Number.isNaN(naiveGflops) ? "-" : naiveGflops.toFixed(1),
        Number.isNaN(naiveGflops) ? "-" : (gflops / naiveGflops).toFixed(1),
      ];
      if (peak) row.push(`${(gflops / (peak * 1e3) * 100).toFixed(1)}%`);
      rows.push(row);
    }
    for (const b of [inp, weight, out, dinp, dweight]) b.destroy();
  }
  printTable(rows);
  const first = totalSeconds.get(precisions[0])!;
  for (const type of precisions) {
    const overall = totalFlops / totalSeconds.get(type)! / 1e9;
    console.log(
      `all products, ${type}: ${overall.toFixed(1)} GFLOP/s` +
        (type !== precisions[0]
          ? `, ${(first / totalSeconds.get(type)!).toFixed(2)}x ${precisions[0]}`
          : "") +
        (peak ? `, MFU ${(overall / (peak * 1e3) * 100).toFixed(1)}% of the f32 peak` : ""),
    );
  }
  for (const o of ops.values()) o.destroy();
}

function destroyAll(dispatches: Dispatch[]): void {
  for (const d of dispatches) d.destroy();
}

function printTable(rows: string[][]): void {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) {
    console.log(
      r.map((cell, i) => i < 3 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))
        .join("  "),
    );
  }
}

if (import.meta.main) await main(Deno.args);

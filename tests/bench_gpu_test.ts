/**
 * `deno task bench gpu` as a real process on the software adapter (`--smoke`): every stage
 * reports, the JSON lines hold what a GPU run's reader needs, earlier lines in --out are kept,
 * and it runs offline (an empty DENO_DIR with --cached-only: the GPU machine has no network).
 */
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";

const BENCH = new URL("../tasks/bench.ts", import.meta.url).pathname;
const GPU_BENCH = new URL("../src/commands/bench/gpu.ts", import.meta.url).pathname;
const STAGES = ["adapter", "ceilings", "matmul", "ops", "step", "pytorch"];

/** `deno task bench ARGS`, i.e. `deno run -A tasks/bench.ts ARGS` (deno.json), offline. */
async function bench(args: string[], denoDir: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--cached-only", "-A", BENCH, ...args],
    env: { DENO_DIR: denoDir },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

type Line = Record<string, unknown>;

/** The measured (not skipped) lines of `stage`. */
function measured(lines: Line[], stage: string): Line[] {
  return lines.filter((l) => l.stage === stage && l.skipped === undefined);
}

function positive(line: Line, ...keys: string[]): void {
  for (const key of keys) {
    const v = line[key];
    assert(
      typeof v === "number" && v > 0 && Number.isFinite(v),
      `${key} in ${JSON.stringify(line)}`,
    );
  }
}

Deno.test("bench gpu --smoke: every stage reports, JSON lines with their keys, --out appended", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bench_gpu_" });
  try {
    const out = join(dir, "bench.jsonl");
    const earlier = '{"run":"an earlier run","stage":"adapter"}\n';
    await Deno.writeTextFile(out, earlier);
    const denoDir = join(dir, "deno_dir");
    const r = await bench(["gpu", "--smoke", "--out", out, "--budget-s", "80"], denoDir);
    assertEquals(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);

    // Every stage has a heading and, under it, a measurement or a "skipped" line.
    const sections = r.stdout.split("\n== ").slice(1);
    assertEquals(sections.map((s) => s.split(/[:\n]/)[0]), STAGES, r.stdout);
    for (const s of sections) {
      assert(s.split("\n").slice(1).some((l) => /^ {2}\S/.test(l)), `stage without a line:\n${s}`);
    }
    assert(!r.stdout.includes("FAILED"), r.stdout);

    const text = await Deno.readTextFile(out);
    assert(text.startsWith(earlier), "the earlier line is kept, first");
    const lines = text.slice(earlier.length).trim().split("\n").map((l) => JSON.parse(l) as Line);
    assertEquals([...new Set(lines.map((l) => l.stage))], STAGES);
    assertEquals(new Set(lines.map((l) => l.run)).size, 1, "one run id");
    for (const l of lines) {
      assert(typeof l.name === "string" && l.name !== "", JSON.stringify(l));
      assert(l.error === undefined, JSON.stringify(l));
      if (l.skipped !== undefined) assert(typeof l.skipped === "string" && l.skipped !== "");
    }

    const [adapter] = measured(lines, "adapter");
    assertEquals(adapter.is_fallback, true);
    assert(Array.isArray(adapter.features), "features");
    positive(adapter.limits as Line, "maxStorageBufferBindingSize", "maxBufferSize");

    const fma = measured(lines, "ceilings").find((l) => l.name === "fma f32 (vec4)");
    assert(fma, "the f32 FMA ceiling was measured");
    positive(fma, "ms", "tflops");
    const copies = measured(lines, "ceilings").filter((l) => l.gbps !== undefined);
    assert(copies.length >= 1, "a copy rate");
    for (const c of copies) positive(c, "ms", "gbps");

    // The step's matmuls, by name, each with its share of the measured f32 ceiling.
    const matmuls = measured(lines, "matmul");
    for (const layer of ["qkv", "attn proj", "fc", "fc proj", "lm_head"]) {
      for (const product of ["forward", "dX", "dW"]) {
        const m = matmuls.find((l) => l.name === `${layer} ${product}` && l.precision === "f32");
        if (!m) continue; // skipped for time: the skip line was checked above
        positive(m, "ms", "tflops", "share_f32_ceiling");
        assert(/^\d+ x \d+ x \d+$/.test(String(m.shape)), `M x N x K: ${m.shape}`);
      }
    }
    assert(matmuls.length >= 1, "at least one matmul was measured");
    for (const l of measured(lines, "ops")) {
      positive(l, "ms", l.name!.toString().match(/layernorm|gelu/) ? "gbps" : "tflops");
    }
    const steps = measured(lines, "step");
    assert(steps.length >= 1, "a training micro-step was measured");
    for (const l of steps) {
      positive(l, "ms", "tokens_per_s", "tflops", "share_f32_ceiling");
      assert(/^B=\d+ T=32$/.test(String(l.shape)), String(l.shape));
    }
    // PyTorch: skipped where python3 has no torch; measured (on the CPU) where it has.
    for (const l of measured(lines, "pytorch")) positive(l, "ms", "tokens_per_s", "repgpt_ratio");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bench gpu: its module graph has no npm package (GPU machines are offline)", async () => {
  const info = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", GPU_BENCH],
    stdout: "piped",
  }).output();
  assertEquals(info.code, 0);
  const { modules } = JSON.parse(new TextDecoder().decode(info.stdout)) as {
    modules: { specifier: string }[];
  };
  assert(modules.length > 10, "the graph was read");
  const foreign = modules.map((m) => m.specifier).filter((s) => !/^(file|node):/.test(s));
  assertEquals(foreign, []);
});

Deno.test("bench gpu: bad flags exit 2 naming the flag; an --out it cannot write exits 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bench_gpu_" });
  try {
    const denoDir = join(dir, "deno_dir");
    const p = await bench(["gpu", "--smoke", "--precision", "f32,f64"], denoDir);
    assertEquals(p.code, 2, p.stderr);
    assert(p.stderr.includes('--precision f32,f64: "f64" is not one of f32, bf16, f16'), p.stderr);
    const b = await bench(["gpu", "--smoke", "--budget-s", "0"], denoDir);
    assertEquals(b.code, 2, b.stderr);
    assert(b.stderr.includes("--budget-s"), b.stderr);
    const o = await bench(["gpu", "--smoke", "--out", dir], denoDir);
    assertEquals(o.code, 1, o.stderr);
    assert(o.stderr.includes(`--out ${dir}: cannot open for appending`), o.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * `bench gpu`'s first two stages: what the adapter is, and the ceilings WebGPU reaches on it:
 * the f32 and packed-f16 FMA rates of kernels that do nothing else, and copy bandwidth (a copy
 * kernel and copyBufferToBuffer). Every later rate is read against these.
 */
import type { Gpu } from "../../gpu/device.ts";
import { createBuffer, readBuffer } from "../../gpu/buffer.ts";
import { grid, Kernel, submit } from "../../gpu/kernel.ts";
import { timeGpu } from "./kernels.ts";
import {
  type DispatchMeasurement,
  measureDispatches,
  type Reporter,
  type StageContext,
} from "./gpu_report.ts";

/** Sizes of the ceiling kernels: full-card on a GPU, tiny with --smoke. */
export interface CeilingSizes {
  /** Workgroups of 256 threads in the FMA kernels. */
  fmaWorkgroups: number;
  /** Loop iterations per thread, each CHAINS * UNROLL vec4 FMAs. */
  fmaIterations: number;
  /** Bytes of each buffer of the copy. */
  copyBytes: number;
  /** Copies per submit (one copy of 256 MiB takes ~0.2 ms on an H100). */
  copyRepeats: number;
}

/** The measured ceilings (undefined: not measured). */
export interface Ceilings {
  /** FMA rates in TFLOP/s. */
  f32?: number;
  f16?: number;
  /** The copy kernel's GB/s (read + write). */
  copyGbps?: number;
}

const LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
  "minStorageBufferOffsetAlignment",
] as const;

/** Records the adapter: its info, features, key limits and subgroup size. */
export async function reportAdapter(gpu: Gpu, report: Reporter): Promise<void> {
  report.stage("adapter");
  // A second adapter object of the same GPU: `requestGpu` keeps only what the trainer needs.
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  const info: Record<string, unknown> = {};
  for (
    const key of [
      "vendor",
      "architecture",
      "device",
      "description",
      "subgroupMinSize",
      "subgroupMaxSize",
    ]
  ) {
    const value = (adapter?.info as unknown as Record<string, unknown> | undefined)?.[key];
    if (value !== undefined && value !== "") info[key] = value;
  }
  const limits = Object.fromEntries(LIMITS.map((k) => [k, gpu.device.limits[k]]));
  report.record({
    stage: "adapter",
    name: gpu.name,
    is_fallback: gpu.isFallback,
    info,
    features: [...gpu.device.features].sort(),
    limits,
    subgroup_size: gpu.hasSubgroups ? await subgroupSize(gpu) : null,
    driver: await nvidiaSmi(),
    note: `${gpu.isFallback ? "software adapter; " : ""}features ${
      [...gpu.device.features].sort().join(" ")
    }`,
  });
}

/** The subgroup size a compute shader sees (the `subgroups` builtins need no `enable`). */
async function subgroupSize(gpu: Gpu): Promise<number | null> {
  const out = createBuffer(gpu, 16, "subgroup size");
  try {
    const kernel = await Kernel.create(gpu, {
      label: "subgroup size",
      code: `
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(subgroup_size) size: u32, @builtin(local_invocation_index) i: u32) {
  if (i == 0u) { out[0] = size; }
}`,
    });
    const d = kernel.bind([1], [out]);
    submit(gpu, [d]);
    d.destroy();
    return new Uint32Array(await readBuffer(gpu, out))[0];
  } catch {
    return null; // the builtin does not compile here: unknown
  } finally {
    out.destroy();
  }
}

/** NVIDIA's driver version and clocks when nvidia-smi is on PATH, else null. */
async function nvidiaSmi(): Promise<string | null> {
  try {
    const { success, stdout } = await new Deno.Command("nvidia-smi", {
      args: [
        "--query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit,memory.total",
        "--format=csv,noheader",
      ],
      stdout: "piped",
      stderr: "null",
    }).output();
    return success ? new TextDecoder().decode(stdout).trim() : null;
  } catch {
    return null; // not an NVIDIA machine
  }
}

/** Independent FMA chains per thread (latency hiding) and statements per loop iteration. */
const CHAINS = 8;
const UNROLL = 8;

/** A kernel of CHAINS independent vec4 FMA chains per thread, unrolled UNROLL times. */
function fmaSource(type: "f32" | "f16", iterations: number): string {
  const v = `vec4<${type}>`;
  const chains = Array.from({ length: CHAINS }, (_, j) => j);
  const step = chains.map((j) => `x${j} = fma(x${j}, m, c);`).join(" ");
  return `${type === "f16" ? "enable f16;" : ""}
@group(0) @binding(1) var<storage, read_write> out: array<vec4f>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u) {
  // Seeded by the thread id so that nothing folds; m < 1 keeps every chain finite.
  let seed = ${type}(id.x % 16u) * ${type}(0.0625);
  ${chains.map((j) => `var x${j} = ${v}(seed + ${type}(${j}));`).join("\n  ")}
  let m = ${v}(${type}(0.999));
  let c = ${v}(${type}(0.001));
  for (var i = 0u; i < ${iterations}u; i++) {
    ${Array(UNROLL).fill(step).join("\n    ")}
  }
  out[id.x % 1024u] = vec4f(${chains.map((j) => `x${j}`).join(" + ")});
}`;
}

/** Measures the FMA and copy ceilings, the yardsticks of every later stage. */
export async function measureCeilings(ctx: StageContext, sizes: CeilingSizes): Promise<Ceilings> {
  const { gpu, report } = ctx;
  const stage = "ceilings";
  report.stage(stage, "what WebGPU reaches on this adapter");
  const ceilings: Ceilings = {};
  if (!ctx.budget.begin(stage)) {
    report.skip(stage, "fma, copy", "no time left in the budget");
    return ceilings;
  }
  const out = createBuffer(gpu, 1024 * 16, "fma out");
  for (const type of ["f32", "f16"] as const) {
    const name = `fma ${type} (vec4${type === "f16" ? ", packed" : ""})`;
    if (type === "f16" && !gpu.hasF16) {
      report.skip(stage, name, "the device has no shader-f16");
      continue;
    }
    const { fmaWorkgroups: wgs, fmaIterations: iters } = sizes;
    const [x, y] = grid(wgs);
    const s = await measureDispatches(ctx, {
      stage,
      name,
      precision: type,
      flops: x * y * 256 * iters * UNROLL * CHAINS * 4 * 2,
      repeats: 1,
    }, async () => {
      const kernel = await Kernel.create(gpu, { label: name, code: fmaSource(type, iters) });
      return [kernel.bind([x, y], [out])];
    });
    if (s) ceilings[type] = x * y * 256 * iters * UNROLL * CHAINS * 4 * 2 / s / 1e12;
  }
  out.destroy();

  const bytes = Math.min(sizes.copyBytes, gpu.maxBinding - gpu.maxBinding % 16);
  const line = { stage, shape: `${(bytes / 2 ** 20).toFixed(0)} MiB`, bytes: 2 * bytes };
  const src = createBuffer(gpu, bytes, "copy src"), dst = createBuffer(gpu, bytes, "copy dst");
  const s = await measureDispatches(
    ctx,
    { ...line, name: "copy kernel (vec4)", repeats: sizes.copyRepeats },
    async () => {
      const kernel = await Kernel.create(gpu, { label: "copy", code: COPY });
      return [kernel.bind(grid(Math.ceil(bytes / 16 / 256)), [dst, src])];
    },
  );
  if (s) ceilings.copyGbps = 2 * bytes / s / 1e9;
  await measureCopyBuffer(ctx, { ...line, name: "copyBufferToBuffer" }, src, dst, sizes);
  src.destroy();
  dst.destroy();
  return ceilings;
}

const COPY = `
@group(0) @binding(1) var<storage, read_write> dst: array<vec4f>;
@group(0) @binding(2) var<storage, read> src: array<vec4f>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) l: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + l;
  if (i < arrayLength(&dst)) { dst[i] = src[i]; }
}`;

/** copyBufferToBuffer, repeated in one command buffer like the copy kernel. */
async function measureCopyBuffer(
  ctx: StageContext,
  line: DispatchMeasurement & { bytes: number },
  src: GPUBuffer,
  dst: GPUBuffer,
  sizes: CeilingSizes,
): Promise<void> {
  const { bytes, ...m } = line;
  if (!ctx.budget.left()) {
    ctx.report.record({ ...m, skipped: "the stage's time budget is spent" });
    return;
  }
  const k = sizes.copyRepeats;
  const s = await timeGpu(ctx.gpu, () => {
    const encoder = ctx.gpu.device.createCommandEncoder();
    for (let i = 0; i < k; i++) encoder.copyBufferToBuffer(src, 0, dst, 0, src.size);
    ctx.gpu.device.queue.submit([encoder.finish()]);
  }, ctx.trials) / k;
  ctx.report.record({ ...m, ms: s * 1e3, gbps: bytes / s / 1e9, repeats: k });
}

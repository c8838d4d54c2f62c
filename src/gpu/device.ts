/**
 * WebGPU adapter and device acquisition.
 *
 * Prefers a real GPU, requests the adapter's own limits (the defaults are far too low for
 * GPT-2), probes the optional features we use, and turns validation errors and device loss
 * into thrown errors that name the kernel or step that caused them.
 *
 * `DENO_WEBGPU_BACKEND` (vulkan, metal, dx12, gl) is honoured by Deno itself.
 */
import { ensurePrivateDirSync } from "../io/private_dir.ts";

/**
 * How matrix products choose their kernel configuration (src/model/matmul_autotune.ts): "off"
 * the fixed defaults, "cached" timed once per adapter and shape and kept on disk, "refresh"
 * timed again and the cache overwritten.
 */
export type AutotuneMode = "off" | "cached" | "refresh";

/** The GPU handle every dispatching module receives. */
export interface Gpu {
  device: GPUDevice;
  /** Adapter description, e.g. "NVIDIA H100 80GB HBM3" or "llvmpipe (LLVM 15.0.6, 256 bits)". */
  name: string;
  /** Identifies the adapter and its driver in caches: vendor/architecture/device/description. */
  adapterKey: string;
  /** True on software adapters (lavapipe, llvmpipe, WARP). */
  isFallback: boolean;
  /** Optional features that the device was created with. */
  hasF16: boolean;
  hasSubgroups: boolean;
  /** `timestamp-query`: GPU-side timing of passes (matmul autotuning). */
  hasTimestamps: boolean;
  /**
   * How ops created on this device tune their matmuls (default "off"); commands set it from
   * `--autotune` before creating a model.
   */
  autotune: AutotuneMode;
  /** Largest byte size of one storage binding; tensors above it are bound in ranges. */
  maxBinding: number;
  /** Required alignment of a storage binding's byte offset. */
  offsetAlignment: number;
  /** Throws the first uncaptured GPU error (validation, out-of-memory) or device loss, if any. */
  throwIfFailed(where: string): void;
}

/** Options for {@link requestGpu}. */
export interface GpuOptions {
  /** Request `subgroups` when the adapter accepts it (default true). */
  subgroups?: boolean;
  /** Print the adapter line to stderr (default false). */
  log?: boolean;
  /** {@link Gpu.autotune} (default "off"). */
  autotune?: AutotuneMode;
}

const LIMITS_WANTED = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupsPerDimension",
] as const;

const shared = new Map<boolean, Promise<Gpu>>();

/**
 * One device per process and `subgroups` choice, created on first use and shared (tests create
 * many kernels); the other options apply to the first request.
 */
export function requestGpu(options: GpuOptions = {}): Promise<Gpu> {
  const key = options.subgroups !== false;
  let gpu = shared.get(key);
  if (!gpu) shared.set(key, gpu = createGpu(options));
  return gpu;
}

async function createGpu(options: GpuOptions): Promise<Gpu> {
  ensureRuntimeDir();
  if (!("gpu" in navigator) || !navigator.gpu) {
    throw new Error("WebGPU is not available in this Deno (navigator.gpu is missing)");
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) {
    const backend = Deno.env.get("DENO_WEBGPU_BACKEND");
    throw new Error(
      `no WebGPU adapter found${
        backend !== undefined ? ` for DENO_WEBGPU_BACKEND=${backend}` : ""
      }` +
        "; on a machine without a GPU install Mesa's software driver (apt-get install mesa-vulkan-drivers)",
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const key of LIMITS_WANTED) requiredLimits[key] = adapter.limits[key];
  const features: GPUFeatureName[] = [];
  for (const f of ["shader-f16", "timestamp-query"] as const) {
    if (adapter.features.has(f)) features.push(f);
  }
  const device = await requestDeviceWithOptional(adapter, features, requiredLimits, options);

  let failure: Error | undefined;
  device.addEventListener("uncapturederror", (event) => {
    failure ??= new Error(`GPU error: ${(event as GPUUncapturedErrorEvent).error.message}`);
  });
  device.lost.then((info) => {
    failure ??= new Error(`GPU device lost (${info.reason}): ${info.message}`);
  });

  const info = adapter.info;
  const gpu: Gpu = {
    device,
    name: adapter.info.description || adapter.info.vendor || "unknown adapter",
    adapterKey: [info.vendor, info.architecture, info.device, info.description].join("/"),
    isFallback: adapter.info.isFallbackAdapter,
    hasF16: device.features.has("shader-f16"),
    hasSubgroups: device.features.has("subgroups" as GPUFeatureName),
    hasTimestamps: device.features.has("timestamp-query"),
    autotune: options.autotune ?? "off",
    maxBinding: device.limits.maxStorageBufferBindingSize,
    offsetAlignment: device.limits.minStorageBufferOffsetAlignment,
    throwIfFailed(where: string) {
      if (failure) throw new Error(`${where}: ${failure.message}`, { cause: failure });
    },
  };
  if (options.log) {
    console.error(
      `webgpu: ${gpu.name}${gpu.isFallback ? " (software adapter)" : ""}, ` +
        `max binding ${(gpu.maxBinding / 2 ** 20).toFixed(0)} MiB, f16 ${gpu.hasF16}, ` +
        `subgroups ${gpu.hasSubgroups}`,
    );
  }
  return gpu;
}

/**
 * On a headless Linux machine without XDG_RUNTIME_DIR, the Vulkan driver's window-system probe
 * prints "error: XDG_RUNTIME_DIR is invalid or not set" on every start. It is harmless; a
 * private runtime folder (0700, like /run/user/UID) keeps it out of users' logs.
 */
function ensureRuntimeDir(): void {
  if (Deno.build.os !== "linux" || Deno.env.get("XDG_RUNTIME_DIR")) return;
  try {
    Deno.env.set("XDG_RUNTIME_DIR", ensurePrivateDirSync(`/tmp/repgpt-runtime-${Deno.uid()}`));
  } catch {
    // No private runtime folder: the driver's warning about it is harmless.
  }
}

/** `adapter.features` lists only standard features; `subgroups` must be probed by asking. */
async function requestDeviceWithOptional(
  adapter: GPUAdapter,
  features: GPUFeatureName[],
  requiredLimits: Record<string, number>,
  options: GpuOptions,
): Promise<GPUDevice> {
  if (options.subgroups !== false) {
    try {
      return await adapter.requestDevice({
        requiredFeatures: [...features, "subgroups" as GPUFeatureName],
        requiredLimits,
      });
    } catch {
      // Not supported by this adapter: fall through without it.
    }
  }
  return await adapter.requestDevice({ requiredFeatures: features, requiredLimits });
}

/**
 * Runs `body` inside validation and out-of-memory error scopes and throws, naming `label`,
 * if it produced an error. Use around pipeline creation and in tests; the hot loop relies on
 * the `uncapturederror` handler and {@link Gpu.throwIfFailed} instead.
 */
export async function withErrorScope<T>(
  gpu: Gpu,
  label: string,
  body: () => T | Promise<T>,
): Promise<T> {
  gpu.device.pushErrorScope("out-of-memory");
  gpu.device.pushErrorScope("validation");
  const result = await body();
  const validation = await gpu.device.popErrorScope();
  const oom = await gpu.device.popErrorScope();
  const error = validation ?? oom;
  if (error) throw new Error(`${label}: ${error.message}`);
  return result;
}

/**
 * Compiled compute kernels and prepared dispatches.
 *
 * A {@link Kernel} is one WGSL entry point compiled once per device (cached by source, entry
 * point and overridable constants). {@link Kernel.bind} prepares a {@link Dispatch}: the bind
 * group and the uniform buffer are created once, so the training step replays a fixed list
 * of dispatches with no allocation (a bind group costs ~8 us of CPU, a dispatch ~3 us).
 *
 * Binding convention for every kernel in `kernels/`:
 *   `@group(0) @binding(0) var<uniform> params: Params;` (only when the kernel has params)
 *   `@group(0) @binding(1..n)` storage buffers, in the order passed to `bind`.
 * Large passes use 2-D grids (see {@link grid}); the kernel computes its linear workgroup
 * index as `wid.x + wid.y * nwg.x` from `workgroup_id` and `num_workgroups`.
 */
import { type Gpu, withErrorScope } from "./device.ts";
import { asRange, type Binding } from "./buffer.ts";

/** What identifies a compiled kernel. */
export interface KernelSpec {
  /** Name used in error messages, e.g. "layernorm_forward". */
  label: string;
  /** WGSL source. */
  code: string;
  /** Entry point (default "main"). */
  entryPoint?: string;
  /** Values for WGSL `override` declarations. */
  constants?: Record<string, number>;
}

const pipelines = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();

/** One compiled entry point. */
export class Kernel {
  private constructor(
    readonly gpu: Gpu,
    readonly label: string,
    readonly pipeline: GPUComputePipeline,
  ) {}

  /** Compile (or fetch from the per-device cache) the pipeline for `spec`. */
  static async create(gpu: Gpu, spec: KernelSpec): Promise<Kernel> {
    let cache = pipelines.get(gpu.device);
    if (!cache) pipelines.set(gpu.device, cache = new Map());
    const entryPoint = spec.entryPoint ?? "main";
    const key = `${entryPoint}\0${JSON.stringify(spec.constants ?? {})}\0${spec.code}`;
    let pipeline = cache.get(key);
    if (!pipeline) {
      pipeline = withErrorScope(gpu, `compiling kernel ${spec.label}`, () => {
        const module = gpu.device.createShaderModule({ code: spec.code, label: spec.label });
        return gpu.device.createComputePipeline({
          label: spec.label,
          layout: "auto",
          compute: { module, entryPoint, constants: spec.constants },
        });
      });
      cache.set(key, pipeline);
      pipeline.catch(() => cache.delete(key));
    }
    return new Kernel(gpu, spec.label, await pipeline);
  }

  /**
   * Prepare a dispatch over `workgroups` with storage `buffers` at bindings 1..n and, when
   * given, `params` in a uniform buffer at binding 0.
   */
  bind(
    workgroups: readonly [number, number?, number?],
    buffers: readonly Binding[],
    params?: ArrayBufferView<ArrayBuffer>,
  ): Dispatch {
    const entries: GPUBindGroupEntry[] = buffers.map((b, i) => {
      const { buffer, offset, size } = asRange(b);
      return { binding: i + 1, resource: { buffer, offset, size } };
    });
    let uniform: GPUBuffer | undefined;
    if (params) {
      uniform = this.gpu.device.createBuffer({
        label: `${this.label} params`,
        size: Math.max(16, Math.ceil(params.byteLength / 16) * 16),
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
      this.gpu.device.queue.writeBuffer(
        uniform,
        0,
        new Uint8Array(params.buffer, params.byteOffset, params.byteLength),
      );
      entries.unshift({ binding: 0, resource: { buffer: uniform } });
    }
    const bindGroup = this.gpu.device.createBindGroup({
      label: this.label,
      layout: this.pipeline.getBindGroupLayout(0),
      entries,
    });
    const [x, y = 1, z = 1] = workgroups;
    const max = this.gpu.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) {
      throw new RangeError(`${this.label}: grid ${x}x${y}x${z} exceeds ${max} per dimension`);
    }
    return new Dispatch(this, bindGroup, [x, y, z], uniform);
  }
}

/** A kernel with its bindings fixed: encode it into any number of passes. */
export class Dispatch {
  constructor(
    readonly kernel: Kernel,
    readonly bindGroup: GPUBindGroup,
    readonly workgroups: [number, number, number],
    readonly uniform?: GPUBuffer,
  ) {}

  /** Record this dispatch into a compute pass. */
  encode(pass: GPUComputePassEncoder): void {
    pass.setPipeline(this.kernel.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    const [x, y, z] = this.workgroups;
    if (x > 0 && y > 0 && z > 0) pass.dispatchWorkgroups(x, y, z);
  }

  /** Overwrite the uniform params (queued; takes effect for work submitted after this call). */
  setParams(params: ArrayBufferView<ArrayBuffer>): void {
    if (!this.uniform) throw new Error(`${this.kernel.label} was bound without params`);
    this.kernel.gpu.device.queue.writeBuffer(
      this.uniform,
      0,
      new Uint8Array(params.buffer, params.byteOffset, params.byteLength),
    );
  }

  /** Free the uniform buffer. */
  destroy(): void {
    this.uniform?.destroy();
  }
}

/** Encode `dispatches` in order into one compute pass and submit them. */
export function submit(gpu: Gpu, dispatches: readonly Dispatch[]): void {
  const encoder = gpu.device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  for (const d of dispatches) d.encode(pass);
  pass.end();
  gpu.device.queue.submit([encoder.finish()]);
}

/**
 * A grid of at least `count` workgroups within the per-dimension limit: `[x, y]` with
 * `x * y >= count`. Kernels must skip linear indices past `count`.
 */
export function grid(count: number, maxPerDimension = 65535): [number, number] {
  if (count <= maxPerDimension) return [count, 1];
  const y = Math.ceil(count / maxPerDimension);
  return [Math.ceil(count / y), y];
}

/**
 * GPU buffers: creation, upload and readback, and byte ranges of a buffer.
 *
 * GPU buffers are invisible to V8's garbage collector: whoever creates one destroys it.
 */
import type { Gpu } from "./device.ts";

/** A byte range of a buffer, bound as one storage binding. Offsets obey `gpu.offsetAlignment`. */
export interface BufferRange {
  buffer: GPUBuffer;
  /** Byte offset into `buffer`. */
  offset: number;
  /** Byte length. */
  size: number;
}

/** What a kernel binding accepts: a whole buffer or a range of one. */
export type Binding = GPUBuffer | BufferRange;

/** Usage for buffers that kernels read and write and tests upload to and read back. */
export const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC |
  GPUBufferUsage.COPY_DST;

/** Storage buffers are rounded up to 16 bytes; WebGPU requires sizes that are multiples of 4. */
export function createBuffer(
  gpu: Gpu,
  byteSize: number,
  label: string,
  usage: number = STORAGE_USAGE,
): GPUBuffer {
  const size = Math.max(16, Math.ceil(byteSize / 16) * 16);
  if (size > gpu.device.limits.maxBufferSize) {
    throw new Error(
      `buffer "${label}" needs ${size} bytes, over this device's maxBufferSize ` +
        `${gpu.device.limits.maxBufferSize}`,
    );
  }
  return gpu.device.createBuffer({ size, usage, label });
}

/** A new storage buffer holding `data`. */
export function uploadBuffer(
  gpu: Gpu,
  data: ArrayBufferView<ArrayBuffer>,
  label: string,
): GPUBuffer {
  const buffer = createBuffer(gpu, data.byteLength, label);
  writeBuffer(gpu, buffer, data);
  return buffer;
}

/** Queue a write of `data` into `target` (at the range's offset plus `byteOffset`). */
export function writeBuffer(
  gpu: Gpu,
  target: Binding,
  data: ArrayBufferView<ArrayBuffer>,
  byteOffset = 0,
) {
  const { buffer, offset } = asRange(target);
  // writeBuffer wants a size that is a multiple of 4; all our element types are 2 or 4 bytes.
  let bytes: Uint8Array<ArrayBuffer> = new Uint8Array(
    data.buffer,
    data.byteOffset,
    data.byteLength,
  );
  if (bytes.byteLength % 4 !== 0) {
    const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
    padded.set(bytes);
    bytes = padded;
  }
  gpu.device.queue.writeBuffer(buffer, offset + byteOffset, bytes);
}

/** Copy a buffer (or range) back to the CPU. Waits for all submitted work: use rarely. */
export function readBuffer(gpu: Gpu, source: Binding): Promise<ArrayBuffer> {
  return mapped(gpu, source, (bytes) => bytes.slice(0).buffer);
}

/**
 * Copy a buffer (or range) of float32 into `out` (e.g. a SharedArrayBuffer view that a
 * Worker reduces in place), with no allocation on the CPU. Waits like {@link readBuffer}.
 */
export async function readInto(gpu: Gpu, source: Binding, out: Float32Array): Promise<void> {
  const { size } = asRange(source);
  if (out.byteLength !== size) {
    throw new RangeError(`readInto: ${size} bytes into a ${out.byteLength}-byte array`);
  }
  await mapped(gpu, source, (bytes) => {
    new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes);
  });
}

/** Copy `source` into a mappable staging buffer and hand its bytes to `use` while mapped. */
async function mapped<T>(gpu: Gpu, source: Binding, use: (bytes: Uint8Array) => T): Promise<T> {
  const { buffer, offset, size } = asRange(source);
  const aligned = Math.ceil(size / 4) * 4;
  const staging = gpu.device.createBuffer({
    size: aligned,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    label: `readback of ${buffer.label}`,
  });
  try {
    const encoder = gpu.device.createCommandEncoder();
    encoder.copyBufferToBuffer(buffer, offset, staging, 0, aligned);
    gpu.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    gpu.throwIfFailed(`reading back ${buffer.label}`);
    return use(new Uint8Array(staging.getMappedRange(), 0, size));
  } finally {
    staging.destroy();
  }
}

/** Read back as float32. */
export async function readF32(gpu: Gpu, source: Binding): Promise<Float32Array> {
  return new Float32Array(await readBuffer(gpu, source));
}

/** Normalise a binding to a range. */
export function asRange(binding: Binding): BufferRange {
  return "buffer" in binding ? binding : { buffer: binding, offset: 0, size: binding.size };
}

/** A sub-range `[byteOffset, byteOffset + byteSize)` of a binding. */
export function subRange(binding: Binding, byteOffset: number, byteSize: number): BufferRange {
  const range = asRange(binding);
  if (byteOffset < 0 || byteOffset + byteSize > range.size) {
    throw new RangeError(
      `sub-range [${byteOffset}, ${byteOffset + byteSize}) outside ${range.size}-byte ` +
        `range of ${range.buffer.label}`,
    );
  }
  return { buffer: range.buffer, offset: range.offset + byteOffset, size: byteSize };
}

/**
 * GPT-2's flat buffers: parameters, gradients and the two AdamW moments, all in one layout
 * (params.ts), plus the weight copy the kernels read, and their uploads and downloads by
 * buffer or by tensor name. {@link GPT2} builds the model on them.
 */
import type { Gpu } from "../gpu/device.ts";
import {
  type Binding,
  createBuffer,
  readF32,
  readInto,
  subRange,
  writeBuffer,
} from "../gpu/buffer.ts";
import { storageBytes, type StorageType } from "../gpu/storage.ts";
import type { ParamLayout, ParamTensor } from "./params.ts";

/** The four flat buffers with the same layout. */
export type FlatName = "params" | "grads" | "m" | "v";

/** The flat buffers of one model, and every other buffer it allocates (freed by destroy). */
export class Gpt2Buffers {
  /** Flat buffers of `layout.totalFloats` floats each. */
  readonly params: GPUBuffer;
  readonly grads: GPUBuffer;
  readonly m: GPUBuffer;
  readonly v: GPUBuffer;
  /** The weights the kernels read: `params`, or its working copy in the storage type. */
  readonly weights: GPUBuffer;
  #buffers: GPUBuffer[] = [];

  constructor(
    readonly gpu: Gpu,
    readonly layout: ParamLayout,
    /** Storage type of activations, their gradients and `weights`. */
    readonly type: StorageType,
  ) {
    const floats = layout.totalFloats;
    this.params = this.allocFloats(floats, "params");
    this.weights = type === "f32"
      ? this.params
      : this.allocBytes(storageBytes(type, floats), `${type} weight copy`);
    this.grads = this.allocFloats(floats, "grads");
    this.m = this.allocFloats(floats, "adamw m");
    this.v = this.allocFloats(floats, "adamw v");
  }

  /** A buffer of `floats` f32s, freed with the model. */
  protected allocFloats(floats: number, label: string): GPUBuffer {
    return this.allocBytes(floats * 4, label);
  }

  /** A buffer of `bytes`, freed with the model. */
  protected allocBytes(bytes: number, label: string): GPUBuffer {
    const buffer = createBuffer(this.gpu, bytes, label);
    this.#buffers.push(buffer);
    return buffer;
  }

  /** The range of `tensor` in one of the flat buffers. */
  view(flat: FlatName, tensor: ParamTensor): Binding {
    return subRange(this[flat], tensor.offset * 4, tensor.size * 4);
  }

  /** Upload a whole flat buffer (`layout.totalFloats` floats). */
  upload(flat: FlatName, data: Float32Array): void {
    if (data.length !== this.layout.totalFloats) {
      throw new RangeError(
        `upload ${flat}: want ${this.layout.totalFloats} floats, got ${data.length}`,
      );
    }
    writeBuffer(this.gpu, this[flat], data as Float32Array<ArrayBuffer>);
    if (flat === "params") this.refreshWeights(0, this.layout.totalFloats);
  }

  /** Upload one named tensor (e.g. "h.0.attn.c_attn.weight", our (out, in) layout). */
  uploadTensor(flat: FlatName, name: string, data: Float32Array): void {
    const tensor = this.layout.get(name);
    if (data.length !== tensor.size) {
      throw new RangeError(
        `upload ${flat} "${name}": want ${tensor.size} floats, got ${data.length}`,
      );
    }
    writeBuffer(this.gpu, this.view(flat, tensor), data as Float32Array<ArrayBuffer>);
    if (flat === "params") this.refreshWeights(tensor.offset, tensor.offset + tensor.size);
  }

  /** Read back one named tensor. Waits for the GPU. */
  async downloadTensor(flat: FlatName, name: string): Promise<Float32Array> {
    return await readF32(this.gpu, this.view(flat, this.layout.get(name)));
  }

  /** Read back a whole flat buffer. Waits for the GPU. */
  async download(flat: FlatName): Promise<Float32Array> {
    return await readF32(this.gpu, this.#whole(flat));
  }

  /** Read back a whole flat buffer into `out` (`layout.totalFloats` floats). Waits for the GPU. */
  async downloadInto(flat: FlatName, out: Float32Array): Promise<void> {
    await readInto(this.gpu, this.#whole(flat), out);
  }

  #whole(flat: FlatName): Binding {
    return subRange(this[flat], 0, this.layout.totalFloats * 4);
  }

  /** Bring the weight copy up to date with `params` over `[start, end)` (f32: nothing to do). */
  protected refreshWeights(_start: number, _end: number): void {}

  /** Free every buffer. */
  destroy(): void {
    for (const b of this.#buffers) b.destroy();
    this.#buffers = [];
  }
}

/**
 * Storage types of GPU tensors: f32, or a 16-bit type (bf16, IEEE f16) packed two per u32
 * (element 2k in the low half of word k, 2k+1 in the high half, so a little-endian Uint16Array
 * of the buffer lists the elements in order). Arithmetic is f32: loading a bf16 is a 16-bit
 * shift, an f16 is unpack2x16float; storing rounds to nearest even (the rounding of PyTorch's
 * and llm.c's casts). An f32 beyond f16's range stores as an infinity, so that dynamic loss
 * scaling sees the overflow (a WGSL f32 -> f16 conversion out of range is indeterminate, which
 * is why f16 is packed by hand too rather than stored as `array<f16>`).
 *
 * Kernels read and write such tensors through accessors that {@link specializeStorage}
 * generates per storage type, so every kernel has one WGSL source for all types:
 *   `load_X(i) -> f32`, and for read_write arrays `store_X(i, v)` and `store2_X(i, v0, v1)`
 *   (elements i and i + 1, i even: one whole word, for kernels that own pairs of elements).
 * A bf16 read_write array is `array<atomic<u32>>`: two threads may write the two halves of one
 * word, and store_X clears then sets its half with atomicAnd/atomicOr, which commute. Each half
 * is still written by one thread only, so results stay deterministic.
 * An `array<vec4f>` gets `load_X(i) -> vec4f` and `store_X(i, v)` of its i-th group of 4
 * elements; as bf16 it is an `array<vec2u>` (a group is two whole words, no atomics).
 */
import type { Gpu } from "./device.ts";
import { type Binding, readBuffer, uploadBuffer } from "./buffer.ts";

/** How a tensor's elements are stored. */
export type StorageType = "f32" | "bf16" | "f16";

/** Bytes per element (bf16 tensors are bound in whole u32 words, see {@link storageBytes}). */
export function elementBytes(type: StorageType): number {
  return type === "f32" ? 4 : 2;
}

/** Bytes a buffer needs for `count` elements of `type` (a whole number of u32 words). */
export function storageBytes(type: StorageType, count: number): number {
  return Math.ceil(count * elementBytes(type) / 4) * 4;
}

/**
 * Rewrites the declarations `var<storage, ACCESS> NAME: array<f32>;` of the arrays named in
 * `types` to their storage type and appends their accessors (see the module comment). Throws
 * when a named array is not declared as `array<f32>` in `code`.
 */
export function specializeStorage(code: string, types: Record<string, StorageType>): string {
  const accessors: string[] = [];
  for (const [name, type] of Object.entries(types)) {
    const decl = new RegExp(`var<storage, (read|read_write)> ${name}: array<(f32|vec4f)>;`);
    const m = decl.exec(code);
    if (!m) {
      throw new Error(`specializeStorage: no "var<storage, ...> ${name}: array<f32 or vec4f>;"`);
    }
    const writable = m[1] === "read_write";
    if (type !== "f32" && type !== "bf16" && type !== "f16") {
      throw new Error(`specializeStorage: unknown storage type "${type}"`);
    }
    if (m[2] === "vec4f") {
      accessors.push(...vec4Accessors(name, type, writable));
      if (type !== "f32") {
        code = code.replace(decl, `var<storage, ${m[1]}> ${name}: array<vec2u>;`);
      }
      continue;
    }
    if (type === "f32") {
      accessors.push(`fn load_${name}(i: u32) -> f32 { return ${name}[i]; }`);
      if (writable) {
        accessors.push(
          `fn store_${name}(i: u32, v: f32) { ${name}[i] = v; }`,
          `fn store2_${name}(i: u32, v0: f32, v1: f32) { ${name}[i] = v0; ${name}[i + 1u] = v1; }`,
        );
      }
      continue;
    }
    const element = writable ? "atomic<u32>" : "u32";
    code = code.replace(decl, `var<storage, ${m[1]}> ${name}: array<${element}>;`);
    const word = writable ? `atomicLoad(&${name}[i >> 1u])` : `${name}[i >> 1u]`;
    accessors.push(`fn load_${name}(i: u32) -> f32 { return ${type}_unpack(${word}, i); }`);
    if (writable) {
      accessors.push(
        `fn store_${name}(i: u32, v: f32) {
  let s = (i & 1u) * 16u;
  atomicAnd(&${name}[i >> 1u], ~(0xffffu << s));
  atomicOr(&${name}[i >> 1u], ${type}_round(v) << s);
}`,
        `fn store2_${name}(i: u32, v0: f32, v1: f32) {
  atomicStore(&${name}[i >> 1u], ${type}_round(v0) | (${type}_round(v1) << 16u));
}`,
      );
    }
  }
  if (Object.values(types).includes("bf16")) accessors.push(BF16_HELPERS);
  if (Object.values(types).includes("f16")) accessors.push(F16_HELPERS);
  return `${code}\n// ---- storage accessors (src/gpu/storage.ts)\n${accessors.join("\n")}\n`;
}

/** Accessors of an `array<vec4f>` named `name` stored as `type`. */
function vec4Accessors(name: string, type: StorageType, writable: boolean): string[] {
  if (type === "f32") {
    const load = `fn load_${name}(i: u32) -> vec4f { return ${name}[i]; }`;
    return writable ? [load, `fn store_${name}(i: u32, v: vec4f) { ${name}[i] = v; }`] : [load];
  }
  const t = type;
  const load = `fn load_${name}(i: u32) -> vec4f {
  let w = ${name}[i];
  return vec4f(${t}_unpack(w.x, 0u), ${t}_unpack(w.x, 1u), ${t}_unpack(w.y, 0u), ${t}_unpack(w.y, 1u));
}`;
  const store = `fn store_${name}(i: u32, v: vec4f) {
  ${name}[i] = vec2u(${t}_round(v.x) | (${t}_round(v.y) << 16u), ${t}_round(v.z) | (${t}_round(v.w) << 16u));
}`;
  return writable ? [load, store] : [load];
}

const BF16_HELPERS = `
// Element i (parity picks the half) of a word of two bf16s, as f32.
fn bf16_unpack(w: u32, i: u32) -> f32 {
  return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) != 0u));
}
// The bf16 nearest to v (ties to even), as its 16 bits; NaN stays a quiet NaN.
fn bf16_round(v: f32) -> u32 {
  let u = bitcast<u32>(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) { return 0x7fc0u; }
  return (u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u;
}`;

const F16_HELPERS = `
// Element i (parity picks the half) of a word of two f16s, as f32 (infinities and NaN kept).
fn f16_unpack(w: u32, i: u32) -> f32 {
  return unpack2x16float(w)[i & 1u];
}
// The f16 nearest to v (ties to even, subnormals kept), as its 16 bits; beyond 65504 (from
// 65520 on) an infinity, NaN a quiet NaN.
fn f16_round(v: f32) -> u32 {
  let u = bitcast<u32>(v);
  let sign = (u >> 16u) & 0x8000u;
  let a = u & 0x7fffffffu;
  if (a > 0x7f800000u) { return 0x7e00u; }
  if (a >= 0x477ff000u) { return sign | 0x7c00u; }
  if (a < 0x38800000u) { return sign | u32(round(abs(v) * 16777216.0)); }
  let b = a - 0x38000000u;
  return sign | ((b + 0xfffu + ((b >> 13u) & 1u)) >> 13u);
}`;

/** The bf16 bits nearest to each f32 of `x` (round to nearest even, as the kernels do). */
export function toBf16Bits(x: ArrayLike<number>): Uint16Array<ArrayBuffer> {
  const f = Float32Array.from(x);
  const u = new Uint32Array(f.buffer);
  const out = new Uint16Array(f.length);
  for (let i = 0; i < u.length; i++) {
    const w = u[i];
    out[i] = (w & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : (w + 0x7fff + ((w >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** The f32 values of bf16 bits. */
export function fromBf16Bits(bits: Uint16Array): Float32Array<ArrayBuffer> {
  const u = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) u[i] = bits[i] << 16;
  return new Float32Array(u.buffer);
}

/** Each value of `x` rounded to the nearest bf16 (what a bf16 store then load gives). */
export function roundToBf16(x: ArrayLike<number>): Float32Array<ArrayBuffer> {
  return fromBf16Bits(toBf16Bits(x));
}

/** The f16 bits nearest to each f32 of `x` (round to nearest even, as the kernels do). */
export function toF16Bits(x: ArrayLike<number>): Uint16Array<ArrayBuffer> {
  const f = Float32Array.from(x);
  const u = new Uint32Array(f.buffer);
  const out = new Uint16Array(f.length);
  for (let i = 0; i < u.length; i++) {
    const sign = (u[i] >>> 16) & 0x8000, a = u[i] & 0x7fffffff;
    if (a > 0x7f800000) out[i] = 0x7e00;
    else if (a >= 0x477ff000) out[i] = sign | 0x7c00;
    else if (a < 0x38800000) out[i] = sign | roundHalfEven(Math.abs(f[i]) * 2 ** 24);
    else {
      const b = a - 0x38000000;
      out[i] = sign | ((b + 0xfff + ((b >>> 13) & 1)) >>> 13);
    }
  }
  return out;
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The f32 values of f16 bits. */
export function fromF16Bits(bits: Uint16Array): Float32Array<ArrayBuffer> {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i], e = (h >> 10) & 0x1f, m = h & 0x3ff, s = h & 0x8000 ? -1 : 1;
    out[i] = e === 0
      ? s * m * 2 ** -24
      : e === 31
      ? (m ? NaN : s * Infinity)
      : s * (1024 + m) * 2 ** (e - 25);
  }
  return out;
}

/** Each value of `x` rounded to the nearest f16 (what an f16 store then load gives). */
export function roundToF16(x: ArrayLike<number>): Float32Array<ArrayBuffer> {
  return fromF16Bits(toF16Bits(x));
}

/** Each value of `x` rounded as a store of `type` then a load gives. */
export function roundTo(type: StorageType, x: ArrayLike<number>): Float32Array<ArrayBuffer> {
  return type === "f32" ? Float32Array.from(x) : type === "bf16" ? roundToBf16(x) : roundToF16(x);
}

/** `x` in `type`'s storage layout, ready for upload. */
export function encodeStorage(
  type: StorageType,
  x: Float32Array,
): Uint16Array<ArrayBuffer> | Float32Array<ArrayBuffer> {
  return type === "f32" ? Float32Array.from(x) : type === "bf16" ? toBf16Bits(x) : toF16Bits(x);
}

/** `count` elements of `type` from the bytes of a buffer, as f32. */
export function decodeStorage(
  type: StorageType,
  bytes: ArrayBuffer,
  count: number,
): Float32Array<ArrayBuffer> {
  if (type === "f32") return new Float32Array(bytes.slice(0, count * 4));
  const bits = new Uint16Array(bytes, 0, count);
  return type === "bf16" ? fromBf16Bits(bits) : fromF16Bits(bits);
}

/** A new storage buffer holding `x` stored as `type`. */
export function uploadStorage(
  gpu: Gpu,
  type: StorageType,
  x: Float32Array,
  label: string,
): GPUBuffer {
  return uploadBuffer(gpu, encodeStorage(type, x), label);
}

/** The first `count` elements of a buffer (or range) stored as `type`, as f32. Waits. */
export async function readStorage(
  gpu: Gpu,
  type: StorageType,
  source: Binding,
  count: number,
): Promise<Float32Array<ArrayBuffer>> {
  return decodeStorage(type, await readBuffer(gpu, source), count);
}

/**
 * safetensors files (the Hugging Face format: loading runs no code).
 *
 * Layout: u64 LE header length N; N bytes of JSON
 * `{"__metadata__": {string: string}, name: {"dtype", "shape", "data_offsets": [begin, end]}}`
 * (padded with spaces so the data starts 8-byte aligned); then the raw little-endian tensor
 * data, offsets relative to the data start, tensors packed without gaps or overlaps.
 *
 * Reading opens the file, parses and validates the header, and reads each tensor only when
 * asked, straight into a caller's Float32Array when one is given: a 500 MB model never needs
 * to be in memory twice. Writing streams tensors in order, each one's bytes fetched only when
 * it is its turn, through {@link writeFileAtomic}.
 */
import { writeAll, writeFileAtomic } from "./atomic.ts";

/** The dtypes this module reads and writes. */
export type Dtype = "F32" | "F16" | "BF16" | "I32" | "I64" | "U8" | "U16" | "U32";

/** The floating-point dtypes (where weights are expected, integers are an error). */
export const FLOAT_DTYPES: readonly Dtype[] = ["F32", "F16", "BF16"];

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  I32: 4,
  I64: 8,
  U8: 1,
  U16: 2,
  U32: 4,
};

/** One tensor's header entry; `begin`/`end` are byte offsets relative to the data start. */
export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Number of elements (product of `shape`; 1 for a scalar `[]`). */
  numel: number;
  begin: number;
  end: number;
}

/** A tensor to write: its bytes, or a function giving them when it is this tensor's turn. */
export interface TensorSource {
  name: string;
  dtype: Dtype;
  shape: number[];
  data: ArrayBufferView | (() => ArrayBufferView | Promise<ArrayBufferView>);
}

// The reference implementation refuses headers over 100 MB; so do we, before allocating.
const MAX_HEADER_BYTES = 100_000_000;
// Conversions from 16-bit and integer dtypes go through a scratch buffer of this many bytes.
const CHUNK_BYTES = 8 << 20;

/** A safetensors file open for reading. Call {@link SafetensorsReader.close} when done. */
export class SafetensorsReader {
  /** Tensors in data order. */
  readonly tensors: readonly TensorInfo[];
  #byName: Map<string, TensorInfo>;
  #file: Deno.FsFile;
  #dataStart: number;
  // Reads seek then read; chaining them keeps concurrent calls from interleaving.
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly path: string,
    file: Deno.FsFile,
    readonly metadata: Readonly<Record<string, string>>,
    tensors: TensorInfo[],
    dataStart: number,
  ) {
    this.#file = file;
    this.tensors = tensors;
    this.#byName = new Map(tensors.map((t) => [t.name, t]));
    this.#dataStart = dataStart;
  }

  /** Open `path` and validate its header; throws an error naming the file on bad input. */
  static async open(path: string): Promise<SafetensorsReader> {
    const file = await Deno.open(path, { read: true });
    try {
      const size = (await file.stat()).size;
      if (size < 8) throw new Error(`${path}: truncated safetensors file (${size} bytes)`);
      const prefix = new Uint8Array(8);
      await readExactly(file, 0, prefix, path);
      const headerLen = new DataView(prefix.buffer).getBigUint64(0, true);
      if (headerLen > BigInt(Math.min(size - 8, MAX_HEADER_BYTES))) {
        throw new Error(
          `${path}: truncated or corrupt safetensors header: it claims ${headerLen} bytes, the ` +
            `file has ${size - 8} after the length` +
            (headerLen > BigInt(MAX_HEADER_BYTES) ? ` (limit ${MAX_HEADER_BYTES})` : ""),
        );
      }
      const n = Number(headerLen);
      const headerBytes = new Uint8Array(n);
      await readExactly(file, 8, headerBytes, path);
      const { metadata, tensors } = parseHeader(headerBytes, size - 8 - n, path);
      return new SafetensorsReader(path, file, metadata, tensors, 8 + n);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /** Tensor names in data order. */
  names(): string[] {
    return this.tensors.map((t) => t.name);
  }

  /** Whether the file holds a tensor named `name`. */
  has(name: string): boolean {
    return this.#byName.has(name);
  }

  /** Header entry of `name`; throws naming the file if there is none. */
  info(name: string): TensorInfo {
    const info = this.#byName.get(name);
    if (!info) throw new Error(`${this.path}: no tensor named "${name}"`);
    return info;
  }

  /** The raw little-endian bytes of `name`. */
  async readBytes(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    const bytes = new Uint8Array(info.end - info.begin);
    const pos = this.#dataStart + info.begin;
    await this.#serial(() => readExactly(this.#file, pos, bytes, this.path));
    return bytes;
  }

  /**
   * `name` converted to f32 (F32, F16, BF16 exactly; integers as the nearest f32), into `out`
   * when given (for example a subarray of a flat parameter buffer), which must have exactly
   * `numel` elements. F32 data is read straight into `out`'s memory.
   */
  async readF32(name: string, out?: Float32Array): Promise<Float32Array> {
    const info = this.info(name);
    const dst = out ?? new Float32Array(info.numel);
    if (dst.length !== info.numel) {
      throw new Error(
        `${this.path}: tensor "${name}" has ${info.numel} elements ` +
          `(shape [${info.shape}]), the destination ${dst.length}`,
      );
    }
    await this.#serial(() => this.#readConverted(info, dst));
    return dst;
  }

  /** Close the file. */
  close(): void {
    this.#file.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #serial<T>(op: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(op);
    this.#queue = result.catch(() => {});
    return result;
  }

  async #readConverted(info: TensorInfo, dst: Float32Array): Promise<void> {
    const start = this.#dataStart + info.begin;
    if (info.dtype === "F32") {
      // Little-endian hosts only (x86, ARM as configured everywhere we run).
      const bytes = new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength);
      await readExactly(this.#file, start, bytes, this.path);
      return;
    }
    const width = DTYPE_BYTES[info.dtype];
    const perChunk = Math.floor(CHUNK_BYTES / width);
    const scratch = new ArrayBuffer(Math.min(perChunk, info.numel) * width);
    for (let i = 0; i < info.numel; i += perChunk) {
      const count = Math.min(perChunk, info.numel - i);
      const bytes = new Uint8Array(scratch, 0, count * width);
      await readExactly(this.#file, start + i * width, bytes, this.path);
      convertToF32(info.dtype, scratch, count, dst.subarray(i, i + count));
    }
  }
}

/**
 * Write tensors (in the given order) and optional string metadata to `path`, atomically.
 * Each source's bytes must match its dtype and shape; function sources are called one at a
 * time, in order, so only one tensor needs to be in memory.
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorSource[],
  metadata?: Record<string, string>,
): Promise<void> {
  const header = encodeHeader(tensors, metadata, path);
  await writeFileAtomic(path, async (file) => {
    await writeAll(file, header);
    for (const t of tensors) {
      const view = typeof t.data === "function" ? await t.data() : t.data;
      const want = numelOf(t.shape) * DTYPE_BYTES[t.dtype];
      if (view.byteLength !== want) {
        throw new Error(
          `${path}: tensor "${t.name}" (${t.dtype} [${t.shape}]) needs ${want} bytes, ` +
            `got ${view.byteLength}`,
        );
      }
      await writeAll(file, new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
    }
  });
}

/**
 * The 8-byte length plus the JSON header for `tensors` laid out in order, padded with spaces
 * to a multiple of 8 bytes as the reference implementation does.
 */
export function encodeHeader(
  tensors: readonly Omit<TensorSource, "data">[],
  metadata: Record<string, string> | undefined,
  path: string,
): Uint8Array {
  // deno-lint-ignore no-explicit-any
  const header: Record<string, any> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new Error(`${path}: metadata "${k}" is not a string`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const t of tensors) {
    if (t.name === "__metadata__" || Object.hasOwn(header, t.name)) {
      throw new Error(`${path}: tensor name "${t.name}" is reserved or repeated`);
    }
    if (!(t.dtype in DTYPE_BYTES)) throw new Error(`${path}: unknown dtype "${t.dtype}"`);
    checkShape(t.shape, `${path}: tensor "${t.name}"`);
    const end = offset + numelOf(t.shape) * DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, end] };
    offset = end;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

function parseHeader(
  bytes: Uint8Array,
  dataLen: number,
  path: string,
): { metadata: Record<string, string>; tensors: TensorInfo[] } {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw new Error(`${path}: safetensors header is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(header)) throw new Error(`${path}: safetensors header is not a JSON object`);
  const metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (!isObject(entry)) throw new Error(`${path}: __metadata__ is not an object`);
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== "string") throw new Error(`${path}: __metadata__."${k}" is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `${path}: tensor "${name}"`;
    if (!isObject(entry)) throw new Error(`${where}: entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== "string" || !(dtype in DTYPE_BYTES)) {
      throw new Error(`${where}: unknown dtype ${JSON.stringify(dtype)}`);
    }
    checkShape(shape, where);
    if (
      !Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) ||
      offsets[0] > offsets[1]
    ) {
      throw new Error(`${where}: bad data_offsets ${JSON.stringify(offsets)}`);
    }
    const numel = numelOf(shape);
    const [begin, end] = offsets as number[];
    const want = numel * DTYPE_BYTES[dtype as Dtype];
    if (end - begin !== want) {
      throw new Error(
        `${where}: ${dtype} [${shape}] needs ${want} bytes, data_offsets [${begin}, ${end}] ` +
          `hold ${end - begin}`,
      );
    }
    tensors.push({ name, dtype: dtype as Dtype, shape, numel, begin, end });
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const t of tensors) {
    if (t.begin < expected) {
      throw new Error(`${path}: tensor "${t.name}" overlaps the previous one (begin ${t.begin})`);
    }
    if (t.begin > expected) {
      throw new Error(
        `${path}: gap before tensor "${t.name}": data ${expected}..${t.begin} unused`,
      );
    }
    expected = t.end;
  }
  if (expected > dataLen) {
    throw new Error(
      `${path}: truncated: tensors need ${expected} data bytes, the file has ${dataLen}`,
    );
  }
  if (expected < dataLen) {
    throw new Error(
      `${path}: tensors cover ${expected} data bytes, the file has ${dataLen} (trailing data)`,
    );
  }
  return { metadata, tensors };
}

function convertToF32(dtype: Dtype, src: ArrayBuffer, count: number, dst: Float32Array): void {
  switch (dtype) {
    case "F16": {
      const h = new Uint16Array(src, 0, count), table = halfTable();
      for (let i = 0; i < count; i++) dst[i] = table[h[i]];
      return;
    }
    case "BF16": {
      // bf16 is the top half of an f32: shift the bits into place.
      const h = new Uint16Array(src, 0, count);
      const bits = new Uint32Array(dst.buffer, dst.byteOffset, count);
      for (let i = 0; i < count; i++) bits[i] = h[i] << 16;
      return;
    }
    case "I64": {
      const v = new BigInt64Array(src, 0, count);
      for (let i = 0; i < count; i++) dst[i] = Number(v[i]);
      return;
    }
    case "I32":
      return dst.set(new Int32Array(src, 0, count));
    case "U32":
      return dst.set(new Uint32Array(src, 0, count));
    case "U16":
      return dst.set(new Uint16Array(src, 0, count));
    case "U8":
      return dst.set(new Uint8Array(src, 0, count));
    case "F32":
      return dst.set(new Float32Array(src, 0, count));
  }
}

let halfToFloat: Float32Array | undefined;
/** All 65,536 f16 bit patterns as f32 (256 KiB, built once). */
function halfTable(): Float32Array {
  if (halfToFloat) return halfToFloat;
  halfToFloat = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
    halfToFloat[h] = exp === 0
      ? sign * frac * 2 ** -24 // zero and subnormals
      : exp === 31
      ? (frac ? NaN : sign * Infinity)
      : sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return halfToFloat;
}

async function readExactly(file: Deno.FsFile, pos: number, dst: Uint8Array, path: string) {
  await file.seek(pos, Deno.SeekMode.Start);
  for (let done = 0; done < dst.length;) {
    const n = await file.read(dst.subarray(done));
    if (n === null) {
      throw new Error(`${path}: unexpected end of file at byte ${pos + done} (truncated?)`);
    }
    done += n;
  }
}

function checkShape(shape: unknown, where: string): asserts shape is number[] {
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw new Error(`${where}: bad shape ${JSON.stringify(shape)}`);
  }
}

function numelOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function isCount(x: unknown): x is number {
  return Number.isSafeInteger(x) && (x as number) >= 0;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

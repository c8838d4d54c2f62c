/**
 * Binding windows: how a tensor larger than one storage binding (`gpu.maxBinding`; GPT-2's wte
 * is 154 MB, lavapipe binds 128 MiB) is bound in pieces whose byte offsets obey
 * `gpu.offsetAlignment`. Every op that splits a tensor plans its pieces with these helpers.
 *
 * Two ways to keep offsets aligned:
 * - a window of any elements: the offset is rounded down to the alignment and the remainder
 *   travels to the kernel as an element offset ({@link bindWindow}, {@link flatWindows},
 *   {@link rowsPerWindow});
 * - pieces of whole units (rows, batch rows) whose sizes are multiples of the alignment, so
 *   that the kernel sees each piece from its first unit ({@link unitsPerPiece}).
 * Elements are 4 bytes (f32 or u32) unless an `elementBytes` of 2 says bf16 (src/gpu/storage.ts):
 * aligned offsets then fall on whole u32 words, so the kernel's element offset stays valid.
 */
import { asRange, type Binding, type BufferRange } from "./buffer.ts";

/** A window of a binding: an aligned byte range, and where the wanted elements start in it. */
export interface Window {
  range: BufferRange;
  /** Element offset of the first wanted element within `range`. */
  offset: number;
}

/**
 * Binds `count` elements of `elementBytes` bytes starting at element `start` of `binding`: the
 * byte offset is rounded down to `alignment` and the remainder returned as an element offset.
 * `what` names the operand in the error when the binding is too small.
 */
export function bindWindow(
  what: string,
  binding: Binding,
  start: number,
  count: number,
  alignment: number,
  elementBytes = 4,
): Window {
  const r = asRange(binding);
  const e = elementBytes;
  if ((start + count) * e > r.size) {
    throw new RangeError(
      `${what}: needs elements [${start}, ${start + count}) but the binding holds ` +
        `${Math.floor(r.size / e)} (buffer "${r.buffer.label}")`,
    );
  }
  const byte = r.offset + start * e;
  const aligned = byte - (byte % alignment);
  const size = Math.ceil((byte + count * e - aligned) / 4) * 4;
  return { range: { buffer: r.buffer, offset: aligned, size }, offset: (byte - aligned) / e };
}

/**
 * The most rows of a strided matrix (rows of `cols` elements of `elementBytes`, `ld` elements
 * apart) that one window of at most `maxBinding` bytes holds wherever it starts (the alignment
 * may cost up to `alignment` - 1 bytes before the first row, and a bf16 window a half word after
 * the last). At least 1; throws when one row does not fit.
 */
export function rowsPerWindow(
  what: string,
  rows: number,
  cols: number,
  ld: number,
  maxBinding: number,
  alignment: number,
  elementBytes = 4,
): number {
  const e = elementBytes;
  const room = Math.floor(maxBinding / e) - (alignment / e - 1) - (e === 4 ? 0 : 1) - cols;
  if (room < 0) {
    throw new RangeError(
      `${what}: one row of ${cols} elements does not fit a ${maxBinding}-byte binding`,
    );
  }
  return Math.max(1, Math.min(rows, Math.floor(room / ld) + 1));
}

/** One window's worth of a flat f32 range, in elements. */
export interface FlatWindow {
  /** First element of the binding (a multiple of alignment / 4). */
  base: number;
  /** Elements in the binding. */
  count: number;
  /** The elements to process, [lo, hi), relative to `base`. */
  lo: number;
  hi: number;
}

/**
 * Windows covering elements [start, end) of a flat f32 buffer (124M parameters: 498 MB): each
 * starts on an `alignment`-byte boundary at or below its first element and spans at most
 * `maxBinding` bytes.
 */
export function flatWindows(
  start: number,
  end: number,
  maxBinding: number,
  alignment: number,
): FlatWindow[] {
  const step = alignment / 4;
  const maxCount = Math.floor(maxBinding / alignment) * step;
  if (!(Number.isInteger(step) && step > 0 && maxCount > step)) {
    throw new RangeError(
      `flat windows: max binding ${maxBinding} B must hold more than one ${alignment}-byte block`,
    );
  }
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end)) {
    throw new RangeError(`flat windows: bad element range [${start}, ${end})`);
  }
  const windows: FlatWindow[] = [];
  for (let first = start; first < end;) {
    const base = Math.floor(first / step) * step;
    const last = Math.min(end, base + maxCount);
    windows.push({ base, count: last - base, lo: first - base, hi: last - base });
    first = last;
  }
  return windows;
}

/** What {@link unitsPerPiece} splits: `units` whole units, each `unitBytes[i]` bytes of tensor i. */
export interface UnitSplit {
  /** Names the tensors in errors, e.g. "attention: qkv of B=16, T=1024, C=768". */
  what: string;
  /** Names a unit in errors, e.g. "batch rows". */
  unit: string;
  units: number;
  unitBytes: readonly number[];
}

/**
 * Units (rows, batch rows) per piece when whole units are split so that each piece binds at
 * most `maxBinding` bytes of every tensor and starts at an aligned byte offset: all units when
 * they fit one binding, otherwise the largest multiple of the alignment step that fits.
 */
export function unitsPerPiece(s: UnitSplit, maxBinding: number, alignment: number): number {
  const largest = Math.max(...s.unitBytes);
  const fit = Math.floor(maxBinding / largest);
  if (fit >= s.units) return s.units;
  // The fewest units whose bytes are a multiple of the alignment in every tensor.
  const step = s.unitBytes.reduce((m, bytes) => lcm(m, alignment / gcd(bytes, alignment)), 1);
  const perPiece = Math.floor(fit / step) * step;
  if (perPiece === 0) {
    throw new RangeError(
      `${s.what} exceeds the ${maxBinding}-byte binding limit and cannot be split by ` +
        `${s.unit} at ${alignment}-byte offsets (that takes ${step} ${s.unit} of ${largest} bytes)`,
    );
  }
  return perPiece;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function lcm(a: number, b: number): number {
  return a / gcd(a, b) * b;
}

/**
 * Splitting a range of a flat f32 buffer (124M parameters: 498 MB) into storage bindings of at
 * most `maxBinding` bytes whose offsets keep the device's alignment.
 */

/** One binding's worth of a flat f32 range, in elements. */
export interface FlatChunk {
  /** First element of the binding (a multiple of alignment / 4). */
  base: number;
  /** Elements in the binding. */
  count: number;
  /** The elements to process, [lo, hi), relative to `base`. */
  lo: number;
  hi: number;
}

/**
 * Chunks covering elements [start, end) of a flat f32 buffer: each binding starts on an
 * `alignment`-byte boundary at or below its first element and spans at most `maxBinding` bytes.
 */
export function flatChunks(
  start: number,
  end: number,
  maxBinding: number,
  alignment: number,
): FlatChunk[] {
  const step = alignment / 4;
  const maxCount = Math.floor(maxBinding / alignment) * step;
  if (!(Number.isInteger(step) && step > 0 && maxCount > step)) {
    throw new RangeError(
      `flat chunks: max binding ${maxBinding} B must hold more than one ${alignment}-byte block`,
    );
  }
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end)) {
    throw new RangeError(`flat chunks: bad element range [${start}, ${end})`);
  }
  const chunks: FlatChunk[] = [];
  for (let first = start; first < end;) {
    const base = Math.floor(first / step) * step;
    const last = Math.min(end, base + maxCount);
    chunks.push({ base, count: last - base, lo: first - base, hi: last - base });
    first = last;
  }
  return chunks;
}

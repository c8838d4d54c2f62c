/**
 * Where a training micro-step's parameter gradients become final: the step is cut into
 * segments (ln_f's backward, each block's, the embedding's; see _gpt2_graph.ts), and each
 * segment finishes some ranges of the flat gradient buffer. A data-parallel trainer can start
 * reducing those ranges while the GPU runs the later segments (distributed/grad_sync.ts).
 */
import { PARAM_ALIGN_FLOATS, type ParamTensor } from "./params.ts";

/** Floats `[start, end)` of the flat buffers. */
export type FloatRange = readonly [start: number, end: number];

/** One segment of a training micro-step and the gradient ranges that are final after it. */
export interface GradSegment {
  /** "head", "block N" or "embedding". */
  label: string;
  /** Sorted, disjoint, not adjacent; tensors with their alignment padding. */
  ranges: FloatRange[];
}

/** The ranges `tensors` occupy in the flat buffers, padding after each included, merged. */
export function tensorRanges(tensors: readonly ParamTensor[]): FloatRange[] {
  return mergeRanges(tensors.map((t): FloatRange => [
    t.offset,
    t.offset + Math.ceil(t.size / PARAM_ALIGN_FLOATS) * PARAM_ALIGN_FLOATS,
  ]));
}

/** `ranges` sorted, with touching ones joined; throws if two overlap (a gradient twice). */
export function mergeRanges(ranges: readonly FloatRange[]): FloatRange[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [start, end] of sorted) {
    const last = out.at(-1);
    if (last && start < last[1]) {
      throw new RangeError(`gradient ranges overlap: [${last}) and [${start},${end})`);
    }
    if (last && start === last[1]) last[1] = end;
    else out.push([start, end]);
  }
  return out;
}

/** Floats in `ranges`. */
export function rangeFloats(ranges: readonly FloatRange[]): number {
  return ranges.reduce((n, [start, end]) => n + end - start, 0);
}

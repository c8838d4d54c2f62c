/**
 * Seeded pseudo-random test inputs: the same on every run and machine, so a failure repeats.
 * One generator for all tests: a 32-bit LCG (Numerical Recipes' constants) read through its
 * high bits, which is plenty for inputs (CPU references decide what is right, not the numbers).
 */

/** A stream of numbers uniform in [0, 1) from `seed` (an integer; its low 32 bits count). */
export function uniform(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** `n` f32 values uniform in [offset - scale, offset + scale), from `seed`. */
export function randomFloats(
  n: number,
  seed: number,
  scale = 1,
  offset = 0,
): Float32Array<ArrayBuffer> {
  const next = uniform(seed);
  return new Float32Array(n).map(() => offset + (next() * 2 - 1) * scale);
}

/**
 * Seedable PRNG with serializable state, for weight init and sampling: xoshiro128** (Blackman
 * and Vigna) on 32-bit integer ops, seeded through a SplitMix-style mix so that nearby seeds
 * give unrelated streams. The state (four u32 words and Box-Muller's cached second normal) is
 * plain JSON and goes into checkpoints, so a resumed run draws the same numbers as an
 * uninterrupted one. V8's Math.log/cos/sin are its own fdlibm port, so normals are identical
 * on every machine.
 */

/** Serializable generator state. */
export interface RngState {
  /** xoshiro128** state, four u32 words (not all zero). */
  s: [number, number, number, number];
  /** Box-Muller's second normal when one is cached. */
  spare: number | null;
}

export class Rng {
  #s: Uint32Array;
  #spare: number | null;

  /** A generator seeded from any safe integer. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new Error(`rng: seed must be an integer, got ${seed}`);
    // Fold the high bits in, then expand with a Weyl sequence through the murmur3 finalizer.
    let x = (seed ^ Math.floor(seed / 2 ** 32)) >>> 0;
    this.#s = new Uint32Array(4);
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.#s[i] = z ^ (z >>> 16);
    }
    this.#spare = null;
  }

  /** A generator that continues from `state` (as returned by {@link Rng.state}). */
  static fromState(state: RngState): Rng {
    const ok = Array.isArray(state?.s) && state.s.length === 4 &&
      state.s.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32) &&
      state.s.some((w) => w !== 0) && (state.spare === null || typeof state.spare === "number");
    if (!ok) throw new Error(`rng: invalid state ${JSON.stringify(state)}`);
    const rng = new Rng(0);
    rng.#s.set(state.s);
    rng.#spare = state.spare;
    return rng;
  }

  /** A copy of the current state (JSON-serializable). */
  state(): RngState {
    const [a, b, c, d] = this.#s;
    return { s: [a, b, c, d], spare: this.#spare };
  }

  /** Next uniform u32. */
  nextU32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits (two u32 draws). */
  nextFloat(): number {
    return ((this.nextU32() >>> 5) * 2 ** 26 + (this.nextU32() >>> 6)) * 2 ** -53;
  }

  /** Uniform integer in [0, n) without modulo bias, for 1 <= n <= 2^32. */
  nextInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new Error(`rng: bad range ${n}`);
    const limit = 2 ** 32 - (2 ** 32 % n); // largest multiple of n that fits
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** Standard normal N(0, 1) by Box-Muller; every second call returns the cached partner. */
  normal(): number {
    if (this.#spare !== null) {
      const z = this.#spare;
      this.#spare = null;
      return z;
    }
    const r = Math.sqrt(-2 * Math.log(1 - this.nextFloat())); // 1 - u is in (0, 1]: no log(0)
    const theta = 2 * Math.PI * this.nextFloat();
    this.#spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** Fill `out` with N(mean, std^2) draws, e.g. `fillNormal(wte, 0.02)` for GPT-2 init. */
  fillNormal(out: Float32Array, std: number, mean = 0): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = mean + std * this.normal();
    return out;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * CPU reference for GELU, in f64 with results stored to f32. Independent of the kernel's
 * fitted tail: erf comes from its Taylor series, erfc from its continued fraction.
 */
import type { GeluForm } from "../gelu.ts";

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_TANH_CUBIC = 0.044715;

/** erf(z) by its Taylor series; accurate to ~1e-15 for |z| < 3. */
function erfSeries(z: number): number {
  let term = z; // (-1)^n z^(2n+1) / n!
  let sum = z;
  for (let n = 1; n < 80; n++) {
    term *= -z * z / n;
    sum += term / (2 * n + 1);
  }
  return sum * 2 / Math.sqrt(Math.PI);
}

/** erfc(z) for z >= 2 by its continued fraction exp(-z^2)/sqrt(pi) / (z + 1/2 / (z + 1 / ...)). */
function erfcContinuedFraction(z: number): number {
  let f = z;
  for (let k = 80; k >= 1; k--) f = z + k / 2 / f;
  return Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
}

/** erfc(z) with full relative precision in the right tail. */
export function erfc(z: number): number {
  if (z < 0) return 2 - erfc(-z);
  return z < 2 ? 1 - erfSeries(z) : erfcContinuedFraction(z);
}

/** Phi(x), the standard normal CDF. */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

function geluValue(x: number, form: GeluForm): number {
  if (form === "tanh") {
    return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x ** 3)));
  }
  return x * normalCdf(x);
}

function geluGrad(x: number, form: GeluForm): number {
  if (form === "tanh") {
    const th = Math.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x ** 3));
    const du = SQRT_2_OVER_PI * (1 + 3 * GELU_TANH_CUBIC * x * x);
    return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * du;
  }
  return normalCdf(x) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
}

/** out (n) = gelu(inp (n)). */
export function geluForward(out: Float32Array, inp: Float32Array, n: number, form: GeluForm) {
  for (let i = 0; i < n; i++) out[i] = geluValue(inp[i], form);
}

/** dinp (n) = gelu'(inp) * dout (n), overwrite (as the GPU op). */
export function geluBackward(
  dinp: Float32Array,
  inp: Float32Array,
  dout: Float32Array,
  n: number,
  form: GeluForm,
) {
  for (let i = 0; i < n; i++) dinp[i] = geluGrad(inp[i], form) * dout[i];
}

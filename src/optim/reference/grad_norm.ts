/**
 * CPU reference for the global gradient norm and PyTorch's clip_grad_norm_ coefficient:
 * the norm in f64, the coefficient clip / (norm + 1e-6) clamped to 1 in f32 as torch does.
 */

/** L2 norm of grads[0, n) and the scale that clips it to `clip` (1 when clip <= 0). */
export function gradNormAndScale(
  grads: Float32Array,
  n: number,
  clip: number,
): { norm: number; scale: number } {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += grads[i] * grads[i];
  const norm = Math.sqrt(sum);
  if (clip <= 0) return { norm, scale: 1 };
  const coef = Math.fround(clip / Math.fround(Math.fround(norm) + 1e-6));
  return { norm, scale: Math.min(1, coef) };
}

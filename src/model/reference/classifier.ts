/**
 * CPU reference of the fused classifier: logits = x @ wte^T, softmax over the first V columns,
 * cross-entropy, and backward through dlogits = (probs - onehot) * dloss.
 * Layouts: x (N, C), wte (Vp, C), targets (N), probs (N, Vp) with padded columns 0.
 */
import { matmulBackward, matmulForward } from "./matmul.ts";

/** losses (N) and probs (N, Vp) <- x, wte, targets. */
export function classifierForward(
  losses: Float32Array,
  probs: Float32Array,
  x: Float32Array,
  wte: Float32Array,
  targets: Uint32Array,
  N: number,
  C: number,
  V: number,
  Vp: number,
): void {
  const logits = new Float32Array(N * Vp);
  matmulForward(logits, x, wte, null, N, C, Vp);
  for (let n = 0; n < N; n++) {
    const row = logits.subarray(n * Vp, n * Vp + V);
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    for (let v = 0; v < Vp; v++) probs[n * Vp + v] = v < V ? Math.exp(row[v] - max) / sum : 0;
    losses[n] = Math.log(sum) + max - row[targets[n]];
  }
}

/**
 * dx (N, C) = dlogits @ wte (+= when `accumulateDx`); dwte (Vp, C) += dlogits^T @ x,
 * with dlogits = (probs - onehot(targets)) * dloss (0 in padded columns).
 */
export function classifierBackward(
  dx: Float32Array,
  dwte: Float32Array,
  probs: Float32Array,
  x: Float32Array,
  wte: Float32Array,
  targets: Uint32Array,
  dloss: number,
  N: number,
  C: number,
  Vp: number,
  accumulateDx = false,
): void {
  const dlogits = new Float32Array(N * Vp);
  for (let n = 0; n < N; n++) {
    for (let v = 0; v < Vp; v++) {
      dlogits[n * Vp + v] = (probs[n * Vp + v] - (v === targets[n] ? 1 : 0)) * dloss;
    }
  }
  matmulBackward(dx, dwte, null, dlogits, x, wte, N, C, Vp, accumulateDx);
}

/** CPU reference for the residual connection (llm.c's residual_forward / residual_backward). */

/** out (n) = a (n) + b (n). */
export function residualForward(out: Float32Array, a: Float32Array, b: Float32Array, n: number) {
  for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/** da (n) += dout (n), db (n) += dout (n). */
export function residualBackward(
  da: Float32Array,
  db: Float32Array,
  dout: Float32Array,
  n: number,
) {
  for (let i = 0; i < n; i++) {
    da[i] += dout[i];
    db[i] += dout[i];
  }
}

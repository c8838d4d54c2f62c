/**
 * CPU reference of the matrix products (llm.c's matmul_forward / matmul_backward), plain loops
 * with f64 accumulation. Layouts: inp (N, C), weight (OC, C) like nn.Linear, out (N, OC).
 */

/** out (N, OC) = inp (N, C) @ weight^T + bias (OC) (bias may be null). */
export function matmulForward(
  out: Float32Array,
  inp: Float32Array,
  weight: Float32Array,
  bias: Float32Array | null,
  N: number,
  C: number,
  OC: number,
): void {
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < OC; o++) {
      let sum = bias ? bias[o] : 0;
      for (let c = 0; c < C; c++) sum += inp[n * C + c] * weight[o * C + c];
      out[n * OC + o] = sum;
    }
  }
}

/**
 * dinp (N, C) = dout @ weight (or += when `accumulateDinp`); dweight (OC, C) += dout^T @ inp;
 * dbias (OC) += column sums of dout. Null gradients are skipped.
 */
export function matmulBackward(
  dinp: Float32Array | null,
  dweight: Float32Array | null,
  dbias: Float32Array | null,
  dout: Float32Array,
  inp: Float32Array,
  weight: Float32Array,
  N: number,
  C: number,
  OC: number,
  accumulateDinp = false,
): void {
  if (dinp) {
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        let sum = 0;
        for (let o = 0; o < OC; o++) sum += dout[n * OC + o] * weight[o * C + c];
        dinp[n * C + c] = accumulateDinp ? dinp[n * C + c] + sum : sum;
      }
    }
  }
  if (dweight) {
    for (let o = 0; o < OC; o++) {
      for (let c = 0; c < C; c++) {
        let sum = 0;
        for (let n = 0; n < N; n++) sum += dout[n * OC + o] * inp[n * C + c];
        dweight[o * C + c] += sum;
      }
    }
  }
  if (dbias) {
    for (let o = 0; o < OC; o++) {
      let sum = 0;
      for (let n = 0; n < N; n++) sum += dout[n * OC + o];
      dbias[o] += sum;
    }
  }
}

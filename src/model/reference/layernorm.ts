/**
 * CPU reference for LayerNorm (eps 1e-5), llm.c's layernorm_forward / layernorm_backward with
 * sums in f64. `bias` / `dbias` may be null (bias-free model).
 */

const EPS = 1e-5;

/** out (N,C), mean (N), rstd (N) <- inp (N,C), weight (C), bias (C) | null. */
export function layernormForward(
  out: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
  inp: Float32Array,
  weight: Float32Array,
  bias: Float32Array | null,
  N: number,
  C: number,
) {
  for (let n = 0; n < N; n++) {
    const x = inp.subarray(n * C, (n + 1) * C);
    let m = 0;
    for (let c = 0; c < C; c++) m += x[c];
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[c] - m) ** 2;
    v /= C;
    const s = 1 / Math.sqrt(v + EPS);
    for (let c = 0; c < C; c++) {
      out[n * C + c] = (x[c] - m) * s * weight[c] + (bias ? bias[c] : 0);
    }
    mean[n] = m;
    rstd[n] = s;
  }
}

/** dinp (N,C) +=, dweight (C) +=, dbias (C) += <- dout (N,C), inp, weight, mean, rstd. */
export function layernormBackward(
  dinp: Float32Array,
  dweight: Float32Array,
  dbias: Float32Array | null,
  dout: Float32Array,
  inp: Float32Array,
  weight: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
  N: number,
  C: number,
) {
  const dw = new Float64Array(C), db = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    const o = n * C;
    let dnormMean = 0, dnormNormMean = 0;
    for (let c = 0; c < C; c++) {
      const norm = (inp[o + c] - mean[n]) * rstd[n];
      const dnorm = weight[c] * dout[o + c];
      dnormMean += dnorm;
      dnormNormMean += dnorm * norm;
    }
    dnormMean /= C;
    dnormNormMean /= C;
    for (let c = 0; c < C; c++) {
      const norm = (inp[o + c] - mean[n]) * rstd[n];
      const dnorm = weight[c] * dout[o + c];
      dinp[o + c] += (dnorm - dnormMean - norm * dnormNormMean) * rstd[n];
      dw[c] += norm * dout[o + c];
      db[c] += dout[o + c];
    }
  }
  for (let c = 0; c < C; c++) {
    dweight[c] += dw[c];
    if (dbias) dbias[c] += db[c];
  }
}

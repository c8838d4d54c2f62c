/** CPU reference for the token + position embedding (llm.c's encoder_forward / _backward). */

/** out (B,T,C) = wte (V,C)[tokens (B,T)] + wpe (maxT,C)[t]. */
export function embeddingForward(
  out: Float32Array,
  tokens: ArrayLike<number>,
  wte: Float32Array,
  wpe: Float32Array,
  B: number,
  T: number,
  C: number,
) {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * C, w = tokens[b * T + t] * C;
      for (let c = 0; c < C; c++) out[o + c] = wte[w + c] + wpe[t * C + c];
    }
  }
}

/** dwte (V,C) += and dwpe (maxT,C) += dout (B,T,C) routed back to each token and position. */
export function embeddingBackward(
  dwte: Float32Array,
  dwpe: Float32Array,
  dout: Float32Array,
  tokens: ArrayLike<number>,
  B: number,
  T: number,
  C: number,
) {
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const o = (b * T + t) * C, w = tokens[b * T + t] * C;
      for (let c = 0; c < C; c++) {
        dwte[w + c] += dout[o + c];
        dwpe[t * C + c] += dout[o + c];
      }
    }
  }
}

/**
 * CPU reference for causal multi-head self-attention, llm.c style: the (T, T) score and
 * probability matrices of one (b, h) are materialized, softmax is the textbook one and the
 * backward goes through the softmax Jacobian. Independent of the GPU's flash formulation.
 *
 * Layouts: qkv (B, T, 3C) with q, k, v of C channels per (b, t), head h owning channels
 * [h*HS, (h+1)*HS); out and dout (B, T, C); lse (B, NH, T).
 */

/** out (B,T,C) =, lse (B,NH,T) = logsumexp of each row's scaled scores <- qkv (B,T,3C). */
export function attentionForward(
  out: Float32Array,
  lse: Float32Array,
  qkv: Float32Array,
  B: number,
  T: number,
  C: number,
  NH: number,
): void {
  const HS = C / NH;
  const att = new Float64Array(T * T); // probabilities of one (b, h), row t over keys <= t
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      headProbabilities(att, lse, qkv, b, h, T, C, NH);
      for (let t = 0; t < T; t++) {
        const o = (b * T + t) * C + h * HS;
        for (let i = 0; i < HS; i++) {
          let sum = 0;
          for (let t2 = 0; t2 <= t; t2++) {
            sum += att[t * T + t2] * qkv[(b * T + t2) * 3 * C + 2 * C + h * HS + i];
          }
          out[o + i] = sum;
        }
      }
    }
  }
}

/** dqkv (B,T,3C) = (overwritten, as on the GPU) <- dout (B,T,C), qkv (B,T,3C). */
export function attentionBackward(
  dqkv: Float32Array,
  dout: Float32Array,
  qkv: Float32Array,
  B: number,
  T: number,
  C: number,
  NH: number,
): void {
  const HS = C / NH;
  const scale = 1 / Math.sqrt(HS);
  const att = new Float64Array(T * T);
  const datt = new Float64Array(T * T);
  const lse = new Float32Array(B * NH * T);
  dqkv.fill(0);
  const at = (b: number, t: number, part: number, h: number) =>
    (b * T + t) * 3 * C + part * C + h * HS;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      headProbabilities(att, lse, qkv, b, h, T, C, NH);
      // out = att v: datt = dout v^T, dv = att^T dout.
      for (let t = 0; t < T; t++) {
        const g = (b * T + t) * C + h * HS;
        for (let t2 = 0; t2 <= t; t2++) {
          const v = at(b, t2, 2, h);
          let sum = 0;
          for (let i = 0; i < HS; i++) {
            sum += dout[g + i] * qkv[v + i];
            dqkv[v + i] += att[t * T + t2] * dout[g + i];
          }
          datt[t * T + t2] = sum;
        }
      }
      // att = softmax(preatt) per row: dpreatt = att * (datt - sum(att * datt)).
      // preatt = scale q k^T: dq += scale dpreatt k, dk += scale dpreatt^T q.
      for (let t = 0; t < T; t++) {
        let dot = 0;
        for (let t2 = 0; t2 <= t; t2++) dot += att[t * T + t2] * datt[t * T + t2];
        const q = at(b, t, 0, h);
        for (let t2 = 0; t2 <= t; t2++) {
          const dpreatt = att[t * T + t2] * (datt[t * T + t2] - dot) * scale;
          const k = at(b, t2, 1, h);
          for (let i = 0; i < HS; i++) {
            dqkv[q + i] += dpreatt * qkv[k + i];
            dqkv[k + i] += dpreatt * qkv[q + i];
          }
        }
      }
    }
  }
}

/**
 * att (T,T) = causal softmax of scale q k^T for head h of batch row b (entries above the
 * diagonal are left as they are and never read); lse[b, h, t] = its rows' logsumexp.
 */
function headProbabilities(
  att: Float64Array,
  lse: Float32Array,
  qkv: Float32Array,
  b: number,
  h: number,
  T: number,
  C: number,
  NH: number,
): void {
  const HS = C / NH;
  const scale = 1 / Math.sqrt(HS);
  for (let t = 0; t < T; t++) {
    const q = (b * T + t) * 3 * C + h * HS;
    let max = -Infinity;
    for (let t2 = 0; t2 <= t; t2++) {
      const k = (b * T + t2) * 3 * C + C + h * HS;
      let dot = 0;
      for (let i = 0; i < HS; i++) dot += qkv[q + i] * qkv[k + i];
      att[t * T + t2] = dot * scale;
      max = Math.max(max, dot * scale);
    }
    let sum = 0;
    for (let t2 = 0; t2 <= t; t2++) {
      att[t * T + t2] = Math.exp(att[t * T + t2] - max);
      sum += att[t * T + t2];
    }
    for (let t2 = 0; t2 <= t; t2++) att[t * T + t2] /= sum;
    lse[(b * NH + h) * T + t] = max + Math.log(sum);
  }
}

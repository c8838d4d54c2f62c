/**
 * CPU reference for one Muon step on one 2-D tensor, following torch.optim.Muon (nesterov,
 * "original" lr adjustment) op by op in f32 (Math.fround), with an explicit transpose where
 * the GPU uses product layouts instead. Products and the norm sum in f64 and round once.
 */
import { type MuonConfig, NS_COEFFICIENTS, NS_EPS, NS_STEPS } from "../muon.ts";

const f = Math.fround;

/** c (m, n) = a (m, k) @ b (k, n), row-major. */
function matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number) {
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += a[i * k + p] * b[p * n + j];
      c[i * n + j] = sum;
    }
  }
  return c;
}

function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j];
  return t;
}

/**
 * torch.optim.Muon's `_zeropower_via_newtonschulz` for g (rows, cols): the approximately
 * orthogonalized (rows, cols) matrix, computed on g^T when rows > cols.
 */
export function newtonSchulz(g: Float32Array, rows: number, cols: number): Float32Array {
  const tall = rows > cols;
  let x = tall ? transpose(g, rows, cols) : Float32Array.from(g);
  const [r, c] = tall ? [cols, rows] : [rows, cols];
  let sum = 0;
  for (const v of x) sum += v * v;
  const norm = f(Math.max(f(Math.sqrt(sum)), NS_EPS));
  x = x.map((v) => f(v / norm));
  const [a, b, cc] = NS_COEFFICIENTS.map(f);
  for (let k = 0; k < NS_STEPS; k++) {
    const gram = matmul(x, transpose(x, r, c), r, c, r); // A = X X^T
    const aa = matmul(gram, gram, r, r, r);
    const poly = gram.map((v, i) => f(f(b * v) + f(cc * aa[i]))); // addmm(A, A, A, beta=b, alpha=c)
    const bx = matmul(poly, x, r, r, c);
    x = x.map((v, i) => f(bx[i] + f(a * v))); // addmm(X, B, X, beta=a)
  }
  return tall ? transpose(x, r, c) : x;
}

/**
 * One Muon step on `params`, `momentum` over the tensor (rows, cols) at `offset` of the flat
 * arrays, in place, from `grads` scaled by the clip scale `gradScale`.
 */
export function muonStep(
  params: Float32Array,
  grads: Float32Array,
  momentum: Float32Array,
  { offset, rows, cols }: { offset: number; rows: number; cols: number },
  { lr, gradScale, config }: { lr: number; gradScale: number; config: MuonConfig },
): void {
  const n = rows * cols;
  const mu = f(config.momentum), oneMinusMu = f(1 - config.momentum);
  const update = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const g = f(grads[offset + i] * f(gradScale));
    const buf = f(momentum[offset + i] + f(oneMinusMu * f(g - momentum[offset + i]))); // lerp_
    momentum[offset + i] = buf;
    update[i] = f(g + f(mu * f(buf - g))); // grad.lerp(buf, momentum)
  }
  const x = newtonSchulz(update, rows, cols);
  const decay = f(1 - lr * config.weightDecay);
  const step = f(lr * Math.sqrt(Math.max(1, rows / cols)));
  for (let i = 0; i < n; i++) {
    params[offset + i] = f(f(params[offset + i] * decay) - f(step * x[i]));
  }
}

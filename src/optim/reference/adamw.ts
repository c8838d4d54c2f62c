/**
 * CPU reference for one AdamW step, following torch.optim.AdamW (foreach=False, fused=False,
 * amsgrad=False) op by op: scalars that depend on the step in f64 (Python floats), every tensor
 * op rounded to f32 (Math.fround), with torch's CPU operand order for lerp_, addcmul_ and
 * addcdiv_. The gradient is first scaled by the clip_grad_norm_ coefficient.
 */
import type { AdamWConfig } from "../adamw.ts";

const f = Math.fround;

/** Update params, m, v over [start, end) in place for step t (1-based) with learning rate lr. */
export function adamwStep(
  params: Float32Array,
  grads: Float32Array,
  m: Float32Array,
  v: Float32Array,
  start: number,
  end: number,
  { t, lr, decay, gradScale, config }: {
    t: number;
    lr: number;
    decay: boolean;
    gradScale: number;
    config: AdamWConfig;
  },
) {
  const { beta1, beta2, eps } = config;
  const wd = decay ? config.weightDecay : 0;
  const stepSize = f(lr / (1 - beta1 ** t));
  const bc2Sqrt = f(Math.sqrt(1 - beta2 ** t));
  const decayFactor = f(1 - lr * wd);
  for (let i = start; i < end; i++) {
    const g = f(grads[i] * f(gradScale)); // clip_grad_norm_: grad.mul_(clip_coef_clamped)
    const p = f(params[i] * decayFactor); // param.mul_(1 - lr * wd)
    m[i] = f(m[i] + f(f(1 - beta1) * f(g - m[i]))); // exp_avg.lerp_(grad, 1 - beta1)
    v[i] = f(f(v[i] * f(beta2)) + f(f(f(1 - beta2) * g) * g)); // mul_(b2).addcmul_(g, g, 1 - b2)
    const denom = f(f(f(Math.sqrt(v[i])) / bc2Sqrt) + f(eps)); // (sqrt(v) / bc2_sqrt).add_(eps)
    params[i] = f(p + f(f(-stepSize * m[i]) / denom)); // param.addcdiv_(m, denom, -step_size)
  }
}

// AdamW step over one binding-sized chunk of the flat parameter buffer, elements [lo, hi),
// 64 per workgroup on a 2-D grid. Op for op as torch.optim.AdamW (foreach=False):
//   g = grad * clip_scale                      (clip_grad_norm_ scales the gradients)
//   p = p * (1 - lr * wd)                      (decoupled weight decay, before the update)
//   m = lerp(m, g, 1 - beta1);  v = v * beta2 + (1 - beta2) * g * g
//   p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// Scalars that depend on the step (lr, t) are folded on the host in f64, as PyTorch does.
// norm_scale[2] != 0 (an f16 model's gradient overflow, see grad_norm.wgsl) skips the step:
// nothing is written.
// adamw_step_copy also writes the new parameters to `copy` through the accessors of
// src/gpu/storage.ts: the bf16 working copy a bf16 model computes with; copy_params writes
// that copy of unchanged parameters (after an upload).

struct Params {
  lo: u32,
  hi: u32,
  beta2: f32,
  one_minus_beta1: f32,
  one_minus_beta2: f32,
  eps: f32,
  decay_factor: f32,  // 1 - lr * wd
  step_size: f32,     // lr / (1 - beta1^t)
  bc2_sqrt: f32,      // sqrt(1 - beta2^t)
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
// [0] = gradient norm, [1] = clip scale (grad_norm.wgsl).
@group(0) @binding(5) var<storage, read> norm_scale: array<f32>;
@group(0) @binding(6) var<storage, read_write> copy: array<f32>;

fn chunk_index(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return params.lo + (wid.x + wid.y * nwg.x) * 64u + lid;
}

fn skipped() -> bool {
  return arrayLength(&norm_scale) > 2u && norm_scale[2] != 0.0;
}

// Updates m and v of element i and returns the new parameter.
fn update(i: u32) -> f32 {
  let g = grad[i] * norm_scale[1];
  let p = param[i] * params.decay_factor;
  let m_new = m[i] + params.one_minus_beta1 * (g - m[i]);
  let v_new = v[i] * params.beta2 + params.one_minus_beta2 * g * g;
  m[i] = m_new;
  v[i] = v_new;
  let denom = sqrt(v_new) / params.bc2_sqrt + params.eps;
  return p - params.step_size * m_new / denom;
}

@compute @workgroup_size(64)
fn adamw_step(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let i = chunk_index(wid, nwg, lid);
  if (i >= params.hi || skipped()) { return; }
  param[i] = update(i);
}

@compute @workgroup_size(64)
fn adamw_step_copy(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
  let i = chunk_index(wid, nwg, lid);
  if (i >= params.hi || skipped()) { return; }
  let p = update(i);
  param[i] = p;
  store_copy(i, p);
}

// copy_params: copy (n) = param (n) over [lo, hi); binding 2 is the parameters here.
@group(0) @binding(2) var<storage, read> copy_src: array<f32>;
@group(0) @binding(1) var<storage, read_write> copy_dst: array<f32>;

@compute @workgroup_size(64)
fn copy_params(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let i = chunk_index(wid, nwg, lid);
  if (i >= params.hi) { return; }
  store_copy_dst(i, copy_src[i]);
}

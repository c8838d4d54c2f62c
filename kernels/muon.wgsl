// Muon's elementwise steps around Newton-Schulz (the products run on matmul.wgsl), over one
// tensor of n elements bound on its own, 64 per workgroup on a 2-D grid. As torch.optim.Muon:
//   muon_momentum:  g = grad * clip_scale;  buf = lerp(buf, g, 1 - mu);  x = lerp(g, buf, mu)
//   muon_normalize: x = x / max(||x||, eps)            (||x|| from grad_norm.wgsl's result[0])
//   muon_combine:   y = alpha * x + beta * y           (torch.addmm's beta * y + alpha * product)
//   muon_update:    p = p * (1 - lr * wd) - lr * shape_scale * x
// Each entry point declares its own bindings (1..n in the order the host binds them).

struct Params {
  n: u32,
  s0: f32,  // momentum: mu;  normalize: eps;  combine: alpha;  update: 1 - lr * wd
  s1: f32,  // momentum: 1 - mu;               combine: beta;   update: lr * shape scale
}
@group(0) @binding(0) var<uniform> params: Params;

// muon_momentum
@group(0) @binding(1) var<storage, read_write> momentum_buf: array<f32>;
@group(0) @binding(2) var<storage, read_write> momentum_x: array<f32>;
@group(0) @binding(3) var<storage, read> momentum_grad: array<f32>;
@group(0) @binding(4) var<storage, read> norm_scale: array<f32>;  // [norm, clip scale]

// muon_normalize
@group(0) @binding(1) var<storage, read_write> normalize_x: array<f32>;
@group(0) @binding(2) var<storage, read> x_norm: array<f32>;  // [||x||, ...]

// muon_combine, muon_update: y_io updated in place from x_in
@group(0) @binding(1) var<storage, read_write> y_io: array<f32>;
@group(0) @binding(2) var<storage, read> x_in: array<f32>;

fn index(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * 64u + lid;
}

@compute @workgroup_size(64)
fn muon_momentum(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  let g = momentum_grad[i] * norm_scale[1];
  let buf = momentum_buf[i] + params.s1 * (g - momentum_buf[i]);
  momentum_buf[i] = buf;
  momentum_x[i] = g + params.s0 * (buf - g);
}

@compute @workgroup_size(64)
fn muon_normalize(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  normalize_x[i] = normalize_x[i] / max(x_norm[0], params.s0);
}

// y = alpha * x + beta * y
@compute @workgroup_size(64)
fn muon_combine(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  y_io[i] = params.s0 * x_in[i] + params.s1 * y_io[i];
}

// param (y_io) = param * (1 - lr * wd) - lr * shape_scale * x
@compute @workgroup_size(64)
fn muon_update(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= params.n) { return; }
  y_io[i] = y_io[i] * params.s0 - params.s1 * x_in[i];
}

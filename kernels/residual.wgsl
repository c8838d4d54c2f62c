// Residual connection over n floats, forward and backward, 64 elements per workgroup on a
// 2-D grid (n may exceed 65,535 * 64).

struct Params { n: u32 }
@group(0) @binding(0) var<uniform> params: Params;

// residual_forward:   out (n) = a (n) + b (n)
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
// residual_backward:  da (n) += dout (n), db (n) += dout (n)
@group(0) @binding(1) var<storage, read_write> da: array<f32>;
@group(0) @binding(2) var<storage, read_write> db: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;

fn element_index(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * 64u + lid;
}

@compute @workgroup_size(64)
fn residual_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_index) lid: u32) {
  let i = element_index(wid, nwg, lid);
  if (i < params.n) { out[i] = a[i] + b[i]; }
}

@compute @workgroup_size(64)
fn residual_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                     @builtin(local_invocation_index) lid: u32) {
  let i = element_index(wid, nwg, lid);
  if (i < params.n) {
    let g = dout[i];
    da[i] += g;
    db[i] += g;
  }
}

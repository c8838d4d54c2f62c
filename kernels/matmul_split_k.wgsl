// Split-K's fixed-order sum (src/model/matmul_split_k.ts):
//   c (M, N) [=|+=] partial[0] + partial[1] + ... + partial[S - 1] [+ bias (N)],
// where partial (S, M, N) holds the products over S slices of K (kernels/matmul.wgsl, one
// workgroup z per slice). One thread per element of c adds the slices in slice order, then the
// bias, then the old c, as matmul.wgsl's store does: no atomics, the same bits on every run.
struct Params {
  M: u32,
  N: u32,
  S: u32,
  ldc: u32,
  c_off: u32,
  bias_off: u32,
  accumulate: u32, // 1: c += sum, 0: c = sum
  has_bias: u32, // 1: add bias[n]
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> c: array<f32>;
@group(0) @binding(2) var<storage, read> partial: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;

const WG = 256u;

@compute @workgroup_size(WG)
fn split_k_sum(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) t: u32,
) {
  let count = p.M * p.N;
  let i = (wid.x + wid.y * nwg.x) * WG + t;
  if (i >= count) {
    return;
  }
  var v = partial[i];
  for (var s = 1u; s < p.S; s++) {
    v += partial[s * count + i];
  }
  let n = i % p.N;
  if (p.has_bias != 0u) {
    v += load_bias(p.bias_off + n);
  }
  let ci = p.c_off + (i / p.N) * p.ldc + n;
  if (p.accumulate != 0u) {
    v += load_c(ci);
  }
  store_c(ci, v);
}

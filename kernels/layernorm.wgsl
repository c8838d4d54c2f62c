// LayerNorm over rows of C channels (eps 1e-5), forward and backward.
//
// Row kernels run one WG-thread workgroup per row on a 2-D grid (N may exceed 65,535) and
// reduce with workgroup_sum / workgroup_sum2, a fixed tree (subgroup shuffles where the device
// has them, src/gpu/workgroup_reduce.ts), so results are bit-identical run to run and the
// same with or without subgroups. WG (a power of two) is 128 on GPUs; software adapters, where
// barriers are costly, use 32.
// Parameter gradients are summed over rows without atomics: layernorm_param_partials sums
// blocks of ROWS rows per channel into partials (R = ceil(N / ROWS) blocks), then
// layernorm_param_reduce adds the R partials of each channel in order into dweight and dbias.
// Rows, weights and their gradient dinp go through the accessors of src/gpu/storage.ts (f32 or
// bf16); mean, rstd, the partials and the parameter gradients are always f32.

struct Params { N: u32, C: u32, R: u32 }
@group(0) @binding(0) var<uniform> params: Params;

override WG: u32 = 128u;
const ROWS = 32u;
const EPS = 1e-5;

// layernorm_forward[_nobias]: out (N,C), mean (N), rstd (N) <- inp (N,C), weight (C), bias (C)
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> rstd_out: array<f32>;
@group(0) @binding(4) var<storage, read> fwd_inp: array<f32>;
@group(0) @binding(5) var<storage, read> fwd_weight: array<f32>;
@group(0) @binding(6) var<storage, read> fwd_bias: array<f32>;

// layernorm_backward: dinp (N,C) += <- dout (N,C), inp (N,C), weight (C), mean (N), rstd (N)
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read> inp: array<f32>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;
@group(0) @binding(5) var<storage, read> mean: array<f32>;
@group(0) @binding(6) var<storage, read> rstd: array<f32>;

// layernorm_param_partials: partials (2,R,C) <- dout (N,C), inp (N,C), mean (N), rstd (N)
//   partials[0] holds sums of dout * norm (for dweight), partials[1] sums of dout (for dbias).
@group(0) @binding(1) var<storage, read_write> partials_out: array<f32>;
@group(0) @binding(4) var<storage, read> pp_mean: array<f32>;
@group(0) @binding(5) var<storage, read> pp_rstd: array<f32>;

// layernorm_param_reduce: dweight (C) +=, dbias (C) += <- partials (2,R,C)
@group(0) @binding(1) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(2) var<storage, read_write> dbias: array<f32>;
@group(0) @binding(3) var<storage, read> partials: array<f32>;
// layernorm_param_reduce_nobias: dweight (C) += <- partials (2,R,C)
@group(0) @binding(2) var<storage, read> nobias_partials: array<f32>;

fn row_index(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.x + wid.y * nwg.x;
}

// (mean, rstd) of row `row` of fwd_inp: two passes, the variance about the mean.
fn row_stats(row: u32, lane: Lane) -> vec2f {
  let lid = lane.index;
  let C = params.C;
  let base = row * C;
  var s = 0.0;
  for (var c = lid; c < C; c += WG) { s += load_fwd_inp(base + c); }
  let m = workgroup_sum(s, lane) / f32(C);
  var v = 0.0;
  for (var c = lid; c < C; c += WG) {
    let d = load_fwd_inp(base + c) - m;
    v += d * d;
  }
  let variance = workgroup_sum(v, lane) / f32(C);
  let r = 1.0 / sqrt(variance + EPS);
  if (lid == 0u) {
    mean_out[row] = m;
    rstd_out[row] = r;
  }
  return vec2f(m, r);
}

@compute @workgroup_size(WG)
fn layernorm_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                     lane: Lane) {
  let row = row_index(wid, nwg);
  if (row >= params.N) { return; }
  let lid = lane.index;
  let stats = row_stats(row, lane);
  let base = row * params.C;
  for (var c = lid; c < params.C; c += WG) {
    let norm = (load_fwd_inp(base + c) - stats.x) * stats.y;
    store_out(base + c, norm * load_fwd_weight(c) + load_fwd_bias(c));
  }
}

@compute @workgroup_size(WG)
fn layernorm_forward_nobias(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                            lane: Lane) {
  let row = row_index(wid, nwg);
  if (row >= params.N) { return; }
  let lid = lane.index;
  let stats = row_stats(row, lane);
  let base = row * params.C;
  for (var c = lid; c < params.C; c += WG) {
    store_out(base + c, (load_fwd_inp(base + c) - stats.x) * stats.y * load_fwd_weight(c));
  }
}

// dinp += rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)), dnorm = weight * dout.
@compute @workgroup_size(WG)
fn layernorm_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                      lane: Lane) {
  let row = row_index(wid, nwg);
  if (row >= params.N) { return; }
  let lid = lane.index;
  let C = params.C;
  let base = row * C;
  let m = mean[row];
  let r = rstd[row];
  var acc = vec2f(0.0);
  for (var c = lid; c < C; c += WG) {
    let dnorm = load_weight(c) * load_dout(base + c);
    acc += vec2f(dnorm, dnorm * (load_inp(base + c) - m) * r);
  }
  let means = workgroup_sum2(acc, lane) / f32(C);
  for (var c = lid; c < C; c += WG) {
    let norm = (load_inp(base + c) - m) * r;
    let dnorm = load_weight(c) * load_dout(base + c);
    let d = (dnorm - means.x - norm * means.y) * r;
    store_dinp(base + c, load_dinp(base + c) + d);
  }
}

// Grid (ceil(C / 64), R): block wid.y sums rows [wid.y * ROWS, +ROWS) of channel c.
@compute @workgroup_size(64)
fn layernorm_param_partials(@builtin(workgroup_id) wid: vec3u,
                            @builtin(local_invocation_index) lid: u32) {
  let C = params.C;
  let c = wid.x * 64u + lid;
  if (c >= C) { return; }
  let first = wid.y * ROWS;
  let last = min(params.N, first + ROWS);
  var dw = 0.0;
  var db = 0.0;
  for (var row = first; row < last; row++) {
    let g = load_dout(row * C + c);
    dw += g * (load_inp(row * C + c) - pp_mean[row]) * pp_rstd[row];
    db += g;
  }
  partials_out[wid.y * C + c] = dw;
  partials_out[(params.R + wid.y) * C + c] = db;
}

@compute @workgroup_size(64)
fn layernorm_param_reduce(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= params.C) { return; }
  var dw = 0.0;
  var db = 0.0;
  for (var b = 0u; b < params.R; b++) {
    dw += partials[b * params.C + c];
    db += partials[(params.R + b) * params.C + c];
  }
  dweight[c] += dw;
  dbias[c] += db;
}

@compute @workgroup_size(64)
fn layernorm_param_reduce_nobias(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= params.C) { return; }
  var dw = 0.0;
  for (var b = 0u; b < params.R; b++) { dw += nobias_partials[b * params.C + c]; }
  dweight[c] += dw;
}

// Global L2 norm of a flat gradient buffer and the clip scale AdamW applies, without atomics.
//
// grad_norm_partials: each 256-thread workgroup sums the squares of ITEMS * 256 consecutive
//   elements of one binding-sized chunk (thread-sequential, then a fixed tree) into
//   partials[first_partial + workgroup]; one dispatch per chunk, 2-D grids.
// grad_norm_finalize: one workgroup adds all partials in a fixed order and writes
//   result[0] = norm, result[1] = clip scale = min(1, clip / (norm + 1e-6)) (1 when clip <= 0),
//   PyTorch's clip_grad_norm_ coefficient. A NaN norm gives a NaN scale, as there.

const WG = 256u;
const ITEMS = 16u;

struct PartialParams { lo: u32, hi: u32, first_partial: u32 }
struct FinalParams { count: u32, clip: f32 }

// grad_norm_partials
@group(0) @binding(0) var<uniform> pp: PartialParams;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials_out: array<f32>;

// grad_norm_finalize
@group(0) @binding(0) var<uniform> fp: FinalParams;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> result: array<f32>;

var<workgroup> red: array<f32, WG>;

fn workgroup_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  return red[0];
}

@compute @workgroup_size(WG)
fn grad_norm_partials(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                      @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * nwg.x;
  let first = pp.lo + w * WG * ITEMS;
  if (first >= pp.hi) { return; }
  var s = 0.0;
  for (var k = 0u; k < ITEMS; k++) {
    let i = first + k * WG + lid;
    if (i < pp.hi) {
      let g = grads[i];
      s += g * g;
    }
  }
  let total = workgroup_sum(s, lid);
  if (lid == 0u) { partials_out[pp.first_partial + w] = total; }
}

@compute @workgroup_size(WG)
fn grad_norm_finalize(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < fp.count; i += WG) { s += partials[i]; }
  let total = workgroup_sum(s, lid);
  if (lid == 0u) {
    let norm = sqrt(total);
    result[0] = norm;
    // Not min(1, coef): min may drop a NaN, and a NaN norm must poison the step visibly.
    let coef = fp.clip / (norm + 1e-6);
    result[1] = select(select(coef, 1.0, coef >= 1.0), 1.0, fp.clip <= 0.0);
  }
}

// Global L2 norm of a flat gradient buffer and the clip scale AdamW applies, without atomics.
//
// grad_norm_partials: each 256-thread workgroup sums the squares of ITEMS * 256 consecutive
//   elements of one binding-sized chunk (thread-sequential, then the fixed tree of
//   workgroup_sum, in subgroups where the device has them: src/gpu/workgroup_reduce.ts) into
//   partials[first_partial + workgroup]; one dispatch per chunk, 2-D grids.
// grad_norm_finalize: one workgroup adds all partials in a fixed order and writes
//   result[0] = norm, result[1] = clip scale = min(1, clip / (norm + 1e-6)) (1 when clip <= 0),
//   PyTorch's clip_grad_norm_ coefficient. A NaN norm gives a NaN scale, as there.
//   With dynamic loss scaling (fp.dynamic = 1) the gradients were computed from the loss times
//   S = loss_scale[0]: result[0] is the norm / S, result[1] the clip scale / S (what AdamW
//   multiplies the raw gradients by), result[2] = 1 when the norm is not finite (an overflow:
//   AdamW skips the step) and 0 otherwise. The state is then updated for the next step, as
//   PyTorch's GradScaler does: an overflow halves S and counts a skipped step in
//   loss_scale[2]; fp.growth_interval good steps in a row (counted in loss_scale[1]) double it.

const WG = 256u;
const ITEMS = 16u;

struct PartialParams { lo: u32, hi: u32, first_partial: u32 }
struct FinalParams { count: u32, clip: f32, dynamic: u32, growth_interval: u32 }

// grad_norm_partials
@group(0) @binding(0) var<uniform> pp: PartialParams;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials_out: array<f32>;

// grad_norm_finalize
@group(0) @binding(0) var<uniform> fp: FinalParams;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> result: array<f32>;
// [scale, good steps in a row, skipped steps]
@group(0) @binding(3) var<storage, read_write> loss_scale: array<f32>;

@compute @workgroup_size(WG)
fn grad_norm_partials(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                      lane: Lane) {
  let lid = lane.index;
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
  let total = workgroup_sum(s, lane);
  if (lid == 0u) { partials_out[pp.first_partial + w] = total; }
}

@compute @workgroup_size(WG)
fn grad_norm_finalize(lane: Lane) {
  let lid = lane.index;
  var s = 0.0;
  for (var i = lid; i < fp.count; i += WG) { s += partials[i]; }
  let total = workgroup_sum(s, lane);
  if (lid == 0u) {
    let s = select(1.0, loss_scale[0], fp.dynamic == 1u);
    let norm = sqrt(total) / s;
    result[0] = norm;
    // Not min(1, coef): min may drop a NaN, and a NaN norm must poison the step visibly.
    let coef = fp.clip / (norm + 1e-6);
    result[1] = select(select(coef, 1.0, coef >= 1.0), 1.0, fp.clip <= 0.0) / s;
    if (fp.dynamic == 1u) {
      // Inf or NaN: all exponent bits set.
      let overflow = (bitcast<u32>(total) & 0x7f800000u) == 0x7f800000u;
      result[2] = select(0.0, 1.0, overflow);
      if (overflow) {
        loss_scale[0] = s * 0.5;
        loss_scale[1] = 0.0;
        loss_scale[2] += 1.0;
      } else if (loss_scale[1] + 1.0 >= f32(fp.growth_interval)) {
        loss_scale[0] = s * 2.0;
        loss_scale[1] = 0.0;
      } else {
        loss_scale[1] += 1.0;
      }
    }
  }
}

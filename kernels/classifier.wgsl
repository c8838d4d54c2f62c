// Fused softmax + cross-entropy (+ dlogits) over a chunk of logit rows, and the mean loss.
// The lm_head products around it are matmuls (src/model/classifier.ts).
//
// softmax_xent: one workgroup per row r of the chunk (rows, Vp):
//   losses[r] = -log softmax(logits[r, 0..V))[target]   (padded columns never enter)
//   backward: logits[r, c] <- (softmax - onehot(target))[c] * dloss * loss_scale[0] for c < V,
//   0 for c >= V, in place (the chunk's logits become its dlogits). loss_scale[0] is the f16
//   model's dynamic loss scale (grad_norm.wgsl updates it), 1 otherwise.
// Max and sum are reduced in a fixed order (strided per thread, then the fixed tree of
// workgroup_max / workgroup_sum, in subgroups where the device has them:
// src/gpu/workgroup_reduce.ts), so the result is the same on every run, with or without
// subgroups. A target >= V gives a NaN loss rather than a silent wrong value.

struct Params {
  V: u32,
  Vp: u32, // row stride of logits
  rows: u32,
  logits_off: u32,
  targets_off: u32,
  losses_off: u32,
  backward: u32, // 1: write dlogits
  dloss: f32, // d(mean loss)/d(loss of one row), e.g. 1 / (B * T * grad_accum_steps)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> losses: array<f32>;
@group(0) @binding(3) var<storage, read> targets: array<u32>;
@group(0) @binding(4) var<storage, read> loss_scale: array<f32>;

const WG = 256u;

@compute @workgroup_size(WG)
fn softmax_xent(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  lane: Lane,
) {
  let t = lane.index;
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.rows) {
    return;
  }
  let base = p.logits_off + r * p.Vp;
  var m = -3.0e38;
  for (var c = t; c < p.V; c += WG) {
    m = max(m, logits[base + c]);
  }
  m = workgroup_max(m, lane);
  var s = 0.0;
  for (var c = t; c < p.V; c += WG) {
    s += exp(logits[base + c] - m);
  }
  s = workgroup_sum(s, lane);
  let tgt = targets[p.targets_off + r];
  if (t == 0u) {
    var loss = bitcast<f32>(0x7fc00000u); // NaN for an out-of-range target
    if (tgt < p.V) {
      loss = log(s) + m - logits[base + tgt];
    }
    losses[p.losses_off + r] = loss;
  }
  if (p.backward == 0u) {
    return;
  }
  // Every thread has read its own columns only, and thread 0 read the target's logit before
  // the barrier below, so the in-place writes cannot race with a read.
  workgroupBarrier();
  let inv = 1.0 / s;
  for (var c = t; c < p.Vp; c += WG) {
    var d = 0.0;
    if (c < p.V) {
      d = exp(logits[base + c] - m) * inv;
      if (c == tgt) {
        d -= 1.0;
      }
      d *= p.dloss * loss_scale[0];
    }
    logits[base + c] = d;
  }
}

// mean_loss: out[out_off] = (sum of losses[losses_off .. + n)) / n, one workgroup, fixed order.
struct MeanParams {
  n: u32,
  losses_off: u32,
  out_off: u32,
}

@group(0) @binding(0) var<uniform> mp: MeanParams;
@group(0) @binding(1) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(2) var<storage, read> mean_in: array<f32>;

@compute @workgroup_size(WG)
fn mean_loss(lane: Lane) {
  let t = lane.index;
  var s = 0.0;
  for (var i = t; i < mp.n; i += WG) {
    s += mean_in[mp.losses_off + i];
  }
  s = workgroup_sum(s, lane);
  if (t == 0u) {
    mean_out[mp.out_off] = s / f32(mp.n);
  }
}

// GELU over n elements, forward and backward: each thread owns a pair of elements (one u32 word
// of a bf16 tensor), 64 threads per workgroup on a 2-D grid. Tensors are read and written
// through the accessors of src/gpu/storage.ts (f32 or bf16).
//
// Two forms, chosen by the TANH override:
//   TANH = false: exact GELU, x * Phi(x) with Phi the standard normal CDF (the seed recipe).
//   TANH = true:  gelu_new of HF GPT-2, 0.5 x (1 + tanh(k (x + 0.044715 x^3))), k = sqrt(2/pi),
//                 evaluated as x * sigmoid(2u): tanh of large arguments is NaN on some drivers.
//
// WGSL has no erf. The normal upper tail Q(a) = 1 - Phi(a), a >= 0, is
//   Q(a) = t exp(-a^2/2 + P(t)),  t = 1 / (1 + a / 2.5),
// with P a degree-8 polynomial fitted (weighted least squares, mpmath reference) over
// a in [0, 14]: 9e-8 fit error in P, about 5e-7 relative error in Q once evaluated in f32.
// a^2 is split as ah^2 + (a - ah)(a + ah) with ah holding 12 significant bits, so ah^2 is exact
// and exp(-a^2/2) does not inherit the rounding of a^2 (up to 98 here).
// Negative x take Phi(x) = Q(-x) directly, so x * Phi(x) keeps its relative precision in the
// left tail instead of cancelling in 1 + erf.

struct Params { n: u32 }
@group(0) @binding(0) var<uniform> params: Params;

override TANH: bool = false;

// gelu_forward:           out (n) = gelu(inp (n))
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;
// gelu_backward:          dinp (n) = gelu'(inp) * dout (n), overwrite
@group(0) @binding(1) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
// gelu_backward_inplace:  grad (n) = gelu'(inp) * grad, the upstream gradient overwritten
@group(0) @binding(1) var<storage, read_write> grad: array<f32>;

const INV_SQRT_2PI = 0.3989422804014327;
const SQRT_2_OVER_PI = 0.7978845608028654;
const GELU_TANH_CUBIC = 0.044715;

// First element of this thread's pair.
fn pair_index(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return ((wid.x + wid.y * nwg.x) * 64u + lid) * 2u;
}

// exp(-a^2 / 2 + p) without rounding a^2 first.
fn exp_minus_half_square_plus(a: f32, p: f32) -> f32 {
  let ah = bitcast<f32>(bitcast<u32>(a) & 0xfffff000u);
  return exp(-0.5 * ah * ah) * exp(-0.5 * (a - ah) * (a + ah) + p);
}

// P(t) of the tail fit, Horner form.
fn tail_poly(t: f32) -> f32 {
  var p = 0.18988372;
  p = p * t - 0.97238827;
  p = p * t + 1.9416735;
  p = p * t - 1.7434323;
  p = p * t + 0.53667355;
  p = p * t - 0.1791582;
  p = p * t + 0.3715551;
  p = p * t + 0.99716884;
  p = p * t - 1.835123;
  return p;
}

// Phi(x), the standard normal CDF.
fn normal_cdf(x: f32) -> f32 {
  // Past |x| = 20 the tail is 0 in f32; the clamp also keeps inf out of a - ah.
  let a = min(abs(x), 20.0);
  let t = 1.0 / (1.0 + a * 0.4);
  let q = t * exp_minus_half_square_plus(a, tail_poly(t));
  return select(1.0 - q, q, x < 0.0);
}

// phi(x), the standard normal density.
fn normal_pdf(x: f32) -> f32 {
  let a = min(abs(x), 20.0);
  return INV_SQRT_2PI * exp_minus_half_square_plus(a, 0.0);
}

// sigmoid(2u) = 0.5 (1 + tanh(u)) and its derivative in u, 2 s (1 - s), from e = exp(-2|u|) <= 1
// so nothing overflows.
fn half_one_plus_tanh(u: f32) -> vec2f {
  let e = exp(-2.0 * abs(u));
  let r = 1.0 / (1.0 + e);
  let s = select(r, e * r, u < 0.0);
  return vec2f(s, 2.0 * e * r * r);
}

fn gelu(x: f32) -> f32 {
  if (TANH) {
    let u = SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x * x * x);
    return x * half_one_plus_tanh(u).x;
  }
  return x * normal_cdf(x);
}

fn gelu_grad(x: f32) -> f32 {
  if (TANH) {
    let u = SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x * x * x);
    let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_TANH_CUBIC * x * x);
    let s = half_one_plus_tanh(u);
    return s.x + x * s.y * du;
  }
  return normal_cdf(x) + x * normal_pdf(x);
}

@compute @workgroup_size(64)
fn gelu_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
  let i = pair_index(wid, nwg, lid);
  if (i + 1u < params.n) {
    store2_out(i, gelu(load_inp(i)), gelu(load_inp(i + 1u)));
  } else if (i < params.n) {
    store_out(i, gelu(load_inp(i)));
  }
}

@compute @workgroup_size(64)
fn gelu_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  let i = pair_index(wid, nwg, lid);
  if (i + 1u < params.n) {
    let d0 = gelu_grad(load_inp(i)) * load_dout(i);
    store2_dinp(i, d0, gelu_grad(load_inp(i + 1u)) * load_dout(i + 1u));
  } else if (i < params.n) {
    store_dinp(i, gelu_grad(load_inp(i)) * load_dout(i));
  }
}

@compute @workgroup_size(64)
fn gelu_backward_inplace(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                         @builtin(local_invocation_index) lid: u32) {
  let i = pair_index(wid, nwg, lid);
  if (i + 1u < params.n) {
    let d0 = gelu_grad(load_inp(i)) * load_grad(i);
    store2_grad(i, d0, gelu_grad(load_inp(i + 1u)) * load_grad(i + 1u));
  } else if (i < params.n) {
    store_grad(i, gelu_grad(load_inp(i)) * load_grad(i));
  }
}

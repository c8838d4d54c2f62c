// General matrix product  c (M, N) [=|+=] op(a) @ op(b) [+ bias (N)],  row-major.
//
// GPT-2's linear layers use three products of it (weight stored (OC, C) like nn.Linear):
//   forward  out (N, OC)   = inp (N, C) @ weight^T   a "mk", b "nk"
//   dinp     dinp (N, C)   = dout (N, OC) @ weight   a "mk", b "kn"
//   dweight  dweight (OC, C) += dout^T @ inp         a "km", b "kn"
// `A_KM` says a is stored (K, M) (else (M, K)); `B_NK` says b is stored (N, K) (else (K, N)).
// Leading dimensions and element offsets come in params, so a call can address rows and
// columns of larger tensors (the classifier's row chunks, splits over gpu.maxBinding).
//
// Four entry points, all blocked in registers (each thread owns TM x TN outputs), in
// kernels/matmul_regs.wgsl and kernels/matmul_tiled.wgsl, which src/model/matmul_source.ts
// appends to this file (the header, bindings, helpers and bias_backward):
//   matmul_regs    no workgroup memory: for CPU adapters (lavapipe), where workgroup memory
//                  and barriers cost more than they save;
//   matmul_regs4   the same with 16-byte loads, for shapes whose vec4s are aligned;
//   matmul_tiled   BM x BN x BK tiles staged in workgroup memory, double-buffered, padded
//                  against bank conflicts, the next k-tile prefetched: for real GPUs;
//   matmul_tiled4  the same with 16-byte loads, for shapes whose vec4s are aligned.
// In matmul_regs thread (tx, ty) owns rows ty + i*WY and columns tx + j*WX of its workgroup's
// tile, so neighbouring threads touch neighbouring columns (coalesced loads and stores); the
// others own groups of 4 rows and of 4 columns instead. Loops marked @unroll are unrolled by
// src/model/matmul_kernels.ts, which also rewrites the `const` tile sizes below per variant.
// a, b, c and bias are read and written through the accessors of src/gpu/storage.ts (each
// f32, bf16 or f16); the vec4 views a4 and b4 of the 16-byte paths serve only f32 operands.
//
// Products: operands are converted to `mul` and multiplied and summed in it. It is f32, except
// where a and b are both f16 on a device with shader-f16: then matmul.ts makes it f16 and sets
// F16_PRODUCTS, and each thread's f16 partial sums are flushed into f32 accumulators after
// every BK products (matmul.ts allows BK <= 32; the variants use 8 or 16), so no f16 sum holds
// more than BK of them. The bias, the accumulation into c and everything after the flush are
// f32.
alias mul = f32;
const F16_PRODUCTS = false;

struct Params {
  M: u32,
  N: u32,
  K: u32,
  lda: u32,
  ldb: u32,
  ldc: u32,
  a_off: u32,
  b_off: u32,
  c_off: u32,
  bias_off: u32,
  accumulate: u32, // 1: c += product, 0: c = product
  has_bias: u32, // 1: add bias[n]
  k_slice: u32, // split-K: K of each slice (workgroup z computes slice z)
  c_slice: u32, // split-K: elements between the slices' outputs in c
}

@group(0) @binding(0) var<uniform> params: Params;
// The params of this workgroup's K slice (see slice_params); every function reads these.
var<private> p: Params;

// Split-K (src/model/matmul.ts): workgroup z computes the product over K slice z,
// [z * k_slice, min(K, (z + 1) * k_slice)), into its own (M, N) block of c, z * c_slice
// elements on. Without a split the grid has one z and k_slice >= K.
fn slice_params(z: u32) -> Params {
  var q = params;
  let k0 = z * q.k_slice;
  q.K = min(q.K - k0, q.k_slice);
  q.a_off += select(k0, k0 * q.lda, A_KM);
  q.b_off += select(k0 * q.ldb, k0, B_NK);
  q.c_off += z * q.c_slice;
  return q;
}

@group(0) @binding(1) var<storage, read_write> c: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

override A_KM: bool = false;
override B_NK: bool = true;

const WX = 8u; // threads along N
const WY = 8u; // threads along M
const TM = 4u; // rows per thread
const TN = 4u; // columns per thread
const BK = 8u; // k step of a tile (matmul_tiled) or unrolled k step (matmul_regs)
const BM = WY * TM;
const BN = WX * TN;

fn a_index(m: u32, k: u32) -> u32 {
  if (A_KM) {
    return p.a_off + k * p.lda + m;
  }
  return p.a_off + m * p.lda + k;
}

fn b_index(k: u32, n: u32) -> u32 {
  if (B_NK) {
    return p.b_off + n * p.ldb + k;
  }
  return p.b_off + k * p.ldb + n;
}

fn store(m: u32, n: u32, value: f32) {
  if (m < p.M && n < p.N) {
    let i = p.c_off + m * p.ldc + n;
    var v = value;
    if (p.has_bias != 0u) {
      v += load_bias(p.bias_off + n);
    }
    if (p.accumulate != 0u) {
      v += load_c(i);
    }
    store_c(i, v);
  }
}

// The f32 vec4 views of a and b of the 16-byte paths (matmul_regs4, matmul_tiled4).
@group(0) @binding(2) var<storage, read> a4: array<vec4f>;
@group(0) @binding(3) var<storage, read> b4: array<vec4f>;

const TM4 = TM / 4u;
const TN4 = TN / 4u;

// dbias (N) += sum over the M rows of dout (M, N), in a fixed order: thread (x, y) of a
// workgroup sums rows y, y + BIAS_WY, ... of column x, then the BIAS_WY partial sums are
// added pairwise.
const BIAS_WX = 32u;
const BIAS_WY = 8u;
var<workgroup> bias_partial: array<f32, BIAS_WX * BIAS_WY>;

@compute @workgroup_size(BIAS_WX, BIAS_WY)
fn bias_backward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  p = params;
  // Params reused: dout is `a` (M, N) with row stride lda; dbias is `c` at c_off.
  let n = wid.x * BIAS_WX + lid.x;
  var sum = 0.0;
  if (n < p.N) {
    for (var m = lid.y; m < p.M; m += BIAS_WY) {
      sum += load_a(p.a_off + m * p.lda + n);
    }
  }
  bias_partial[lid.y * BIAS_WX + lid.x] = sum;
  workgroupBarrier();
  for (var s = BIAS_WY / 2u; s > 0u; s /= 2u) {
    if (lid.y < s) {
      bias_partial[lid.y * BIAS_WX + lid.x] += bias_partial[(lid.y + s) * BIAS_WX + lid.x];
    }
    workgroupBarrier();
  }
  if (lid.y == 0u && n < p.N) {
    store_c(p.c_off + n, load_c(p.c_off + n) + bias_partial[lid.x]);
  }
}

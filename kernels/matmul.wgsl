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
// Three entry points, all blocked in registers (each thread owns TM x TN outputs):
//   matmul_regs   no workgroup memory: for CPU adapters (lavapipe), where workgroup memory
//                 and barriers cost more than they save;
//   matmul_regs4  the same with 16-byte loads, for shapes whose vec4s are aligned;
//   matmul_tiled  BM x BN x BK tiles staged in workgroup memory: for real GPUs.
// In matmul_regs thread (tx, ty) owns rows ty + i*WY and columns tx + j*WX of its workgroup's
// tile, so neighbouring threads touch neighbouring columns (coalesced loads and stores);
// matmul_regs4 and matmul_tiled own groups of 4 rows and of 4 columns instead. Loops marked
// @unroll are unrolled by src/model/matmul.ts, which also rewrites the `const` tile sizes
// below for each variant. a, b, c and bias are read and written through the accessors of
// src/gpu/storage.ts (each f32, bf16 or f16); matmul_regs4's vec4 views a4 and b4 serve only
// f32 operands.
//
// Products: operands are converted to `mul` and multiplied and summed in it. It is f32, except
// where a and b are both f16 on a device with shader-f16: then matmul.ts makes it f16 and sets
// F16_PRODUCTS, and each thread's f16 partial sums are flushed into f32 accumulators after
// every BK products (BK <= 16), so no f16 sum holds more than BK of them. The bias, the
// accumulation into c and everything after the flush are f32.
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
}

@group(0) @binding(0) var<uniform> p: Params;
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

@compute @workgroup_size(WX, WY)
fn matmul_regs(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  // With WY = 1 every row index is the same across the workgroup: the compiler then loads
  // a with one scalar load per workgroup instead of one per thread (a big win on lavapipe).
  let m0 = wid.y * BM + select(lid.y, 0u, WY == 1u);
  let n0 = wid.x * BN + lid.x;
  // Rows and columns past the edge are clamped so every load stays in bounds; their
  // results are never stored.
  var a_base: array<u32, TM>;
  var b_base: array<u32, TN>;
  // @unroll
  for (var i = 0u; i < TM; i++) {
    a_base[i] = a_index(min(m0 + i * WY, p.M - 1u), 0u);
  }
  // @unroll
  for (var j = 0u; j < TN; j++) {
    b_base[j] = b_index(0u, min(n0 + j * WX, p.N - 1u));
  }
  let a_step = select(1u, p.lda, A_KM);
  let b_step = select(p.ldb, 1u, B_NK);
  var acc: array<f32, TM * TN>;
  var part: array<mul, TM * TN>; // products since the last flush into acc
  var av: array<mul, TM>;
  var bv: array<mul, TN>;
  let k_main = p.K - p.K % BK;
  for (var k0 = 0u; k0 < k_main; k0 += BK) {
    // @unroll
    for (var kk = 0u; kk < BK; kk++) {
      // @unroll
      for (var i = 0u; i < TM; i++) {
        av[i] = mul(load_a(a_base[i] + (k0 + kk) * a_step));
      }
      // @unroll
      for (var j = 0u; j < TN; j++) {
        bv[j] = mul(load_b(b_base[j] + (k0 + kk) * b_step));
      }
      // @unroll
      for (var i = 0u; i < TM; i++) {
        // @unroll
        for (var j = 0u; j < TN; j++) {
          part[i * TN + j] = fma(av[i], bv[j], part[i * TN + j]);
        }
      }
    }
    if (F16_PRODUCTS) {
      // @unroll
      for (var e = 0u; e < TM * TN; e++) {
        acc[e] += f32(part[e]);
        part[e] = mul(0.0);
      }
    }
  }
  for (var k = k_main; k < p.K; k++) {
    // @unroll
    for (var i = 0u; i < TM; i++) {
      av[i] = mul(load_a(a_base[i] + k * a_step));
    }
    // @unroll
    for (var j = 0u; j < TN; j++) {
      bv[j] = mul(load_b(b_base[j] + k * b_step));
    }
    // @unroll
    for (var i = 0u; i < TM; i++) {
      // @unroll
      for (var j = 0u; j < TN; j++) {
        part[i * TN + j] = fma(av[i], bv[j], part[i * TN + j]);
      }
    }
  }
  // @unroll
  for (var i = 0u; i < TM; i++) {
    // @unroll
    for (var j = 0u; j < TN; j++) {
      store(m0 + i * WY, n0 + j * WX, acc[i * TN + j] + f32(part[i * TN + j]));
    }
  }
}

// matmul_regs4: matmul_regs with 16-byte loads, for shapes where every vec4 it loads is
// aligned (src/model/matmul.ts checks: K, the vec4-loaded dimensions, leading dimensions and
// offsets are multiples of 4). Per step of 4 in k a thread loads TM + TN vec4s for
// 4 * TM * TN FMAs, four times fewer loads than matmul_regs (loads dominate on lavapipe).
// Its rows come in groups of 4 (so "km" can load 4 rows at once), its columns too.
@group(0) @binding(2) var<storage, read> a4: array<vec4f>;
@group(0) @binding(3) var<storage, read> b4: array<vec4f>;

const TM4 = TM / 4u;
const TN4 = TN / 4u;

@compute @workgroup_size(WX, WY)
fn matmul_regs4(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let g_m = wid.y * WY * TM4 + select(lid.y, 0u, WY == 1u); // first row group
  let g_n = wid.x * WX * TN4 + lid.x; // first column group
  // Row groups i4 (rows 4 * (g_m + i4 * WY) + r) and column groups j4, clamped for loads.
  var a_base: array<u32, TM>; // mk: vec4 index of row i at k = 0; km: of row group i / 4
  var b_base: array<u32, TN>; // nk: vec4 index of column j at k = 0; kn: of column group j / 4
  // @unroll
  for (var i = 0u; i < TM; i++) {
    let m4 = min(g_m + (i / 4u) * WY, (p.M - 1u) / 4u);
    if (A_KM) {
      a_base[i] = p.a_off / 4u + m4;
    } else {
      a_base[i] = (p.a_off + min(m4 * 4u + i % 4u, p.M - 1u) * p.lda) / 4u;
    }
  }
  // @unroll
  for (var j = 0u; j < TN; j++) {
    let n4 = min(g_n + (j / 4u) * WX, (p.N - 1u) / 4u);
    if (B_NK) {
      b_base[j] = (p.b_off + min(n4 * 4u + j % 4u, p.N - 1u) * p.ldb) / 4u;
    } else {
      b_base[j] = p.b_off / 4u + n4;
    }
  }
  var acc: array<vec4f, TM * TN4>; // row i, column group j4: columns 4 * j4 .. + 3
  var av: array<vec4f, TM>; // row i, k .. k + 3
  var bv: array<vec4f, 4u * TN4>; // k + kk, column group j4
  for (var k = 0u; k < p.K; k += 4u) {
    if (A_KM) {
      // @unroll
      for (var kk = 0u; kk < 4u; kk++) {
        // @unroll
        for (var i4 = 0u; i4 < TM4; i4++) {
          let v = a4[a_base[i4 * 4u] + (k + kk) * p.lda / 4u];
          av[i4 * 4u][kk] = v.x;
          av[i4 * 4u + 1u][kk] = v.y;
          av[i4 * 4u + 2u][kk] = v.z;
          av[i4 * 4u + 3u][kk] = v.w;
        }
      }
    } else {
      // @unroll
      for (var i = 0u; i < TM; i++) {
        av[i] = a4[a_base[i] + k / 4u];
      }
    }
    if (B_NK) {
      // @unroll
      for (var j4 = 0u; j4 < TN4; j4++) {
        // @unroll
        for (var r = 0u; r < 4u; r++) {
          let v = b4[b_base[j4 * 4u + r] + k / 4u];
          bv[j4][r] = v.x;
          bv[TN4 + j4][r] = v.y;
          bv[2u * TN4 + j4][r] = v.z;
          bv[3u * TN4 + j4][r] = v.w;
        }
      }
    } else {
      // @unroll
      for (var kk = 0u; kk < 4u; kk++) {
        // @unroll
        for (var j4 = 0u; j4 < TN4; j4++) {
          bv[kk * TN4 + j4] = b4[b_base[j4 * 4u] + (k + kk) * p.ldb / 4u];
        }
      }
    }
    // @unroll
    for (var i = 0u; i < TM; i++) {
      // @unroll
      for (var j4 = 0u; j4 < TN4; j4++) {
        // @unroll
        for (var kk = 0u; kk < 4u; kk++) {
          acc[i * TN4 + j4] = fma(vec4f(av[i][kk]), bv[kk * TN4 + j4], acc[i * TN4 + j4]);
        }
      }
    }
  }
  // @unroll
  for (var i = 0u; i < TM; i++) {
    // @unroll
    for (var j4 = 0u; j4 < TN4; j4++) {
      let m = (g_m + (i / 4u) * WY) * 4u + i % 4u;
      let n = (g_n + j4 * WX) * 4u;
      let v = acc[i * TN4 + j4];
      store(m, n, v.x);
      store(m, n + 1u, v.y);
      store(m, n + 2u, v.z);
      store(m, n + 3u, v.w);
    }
  }
}

// Tiles of a and b, k-major, in vec4s: tile_a[k * BM / 4 + m / 4][m % 4], likewise tile_b.
var<workgroup> tile_a: array<vec4<mul>, BK * BM / 4u>;
var<workgroup> tile_b: array<vec4<mul>, BK * BN / 4u>;

// Thread (tx, ty) owns the rows 4 * (ty + i4 * WY) + r and the columns 4 * (tx + j4 * WX) + r
// (r < 4), so each of its workgroup-memory reads is a 16-byte load and neighbouring threads
// read neighbouring vec4s (no bank conflicts). Global loads are scalar and bounds-checked,
// so any shape and offset works.
@compute @workgroup_size(WX, WY)
fn matmul_tiled(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(local_invocation_index) t: u32,
) {
  let tile_m = wid.y * BM;
  let tile_n = wid.x * BN;
  var acc: array<vec4f, TM * TN4>; // row i = 4 * i4 + r, column group j4
  var part: array<vec4<mul>, TM * TN4>; // products since the last flush into acc
  var av: array<vec4<mul>, TM4>;
  var bv: array<vec4<mul>, TN4>;
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    // Stage the tiles: BK * BM (and BK * BN) elements, WX * WY threads, each loading
    // TM * BK / WX (TN * BK / WY) of them; neighbouring threads read neighbouring addresses
    // of the operand's contiguous dimension. Out-of-range elements are 0.
    // @unroll
    for (var l = 0u; l < TM * BK / WX; l++) {
      let e = t + l * WX * WY;
      var m: u32;
      var k: u32;
      if (A_KM) {
        m = e % BM;
        k = e / BM;
      } else {
        k = e % BK;
        m = e / BK;
      }
      var v = 0.0;
      if (tile_m + m < p.M && k0 + k < p.K) {
        v = load_a(a_index(tile_m + m, k0 + k));
      }
      tile_a[k * BM / 4u + m / 4u][m % 4u] = mul(v);
    }
    // @unroll
    for (var l = 0u; l < TN * BK / WY; l++) {
      let e = t + l * WX * WY;
      var n: u32;
      var k: u32;
      if (B_NK) {
        k = e % BK;
        n = e / BK;
      } else {
        n = e % BN;
        k = e / BN;
      }
      var v = 0.0;
      if (tile_n + n < p.N && k0 + k < p.K) {
        v = load_b(b_index(k0 + k, tile_n + n));
      }
      tile_b[k * BN / 4u + n / 4u][n % 4u] = mul(v);
    }
    workgroupBarrier();
    // @unroll
    for (var kk = 0u; kk < BK; kk++) {
      // @unroll
      for (var i4 = 0u; i4 < TM4; i4++) {
        av[i4] = tile_a[kk * BM / 4u + lid.y + i4 * WY];
      }
      // @unroll
      for (var j4 = 0u; j4 < TN4; j4++) {
        bv[j4] = tile_b[kk * BN / 4u + lid.x + j4 * WX];
      }
      // @unroll
      for (var i = 0u; i < TM; i++) {
        // @unroll
        for (var j4 = 0u; j4 < TN4; j4++) {
          part[i * TN4 + j4] = fma(vec4<mul>(av[i / 4u][i % 4u]), bv[j4], part[i * TN4 + j4]);
        }
      }
    }
    if (F16_PRODUCTS) {
      // @unroll
      for (var e = 0u; e < TM * TN4; e++) {
        acc[e] += vec4f(part[e]);
        part[e] = vec4<mul>(0.0);
      }
    }
    workgroupBarrier();
  }
  // @unroll
  for (var i = 0u; i < TM; i++) {
    // @unroll
    for (var j4 = 0u; j4 < TN4; j4++) {
      let m = tile_m + (lid.y + (i / 4u) * WY) * 4u + i % 4u;
      let n = tile_n + (lid.x + j4 * WX) * 4u;
      let v = acc[i * TN4 + j4] + vec4f(part[i * TN4 + j4]);
      store(m, n, v.x);
      store(m, n + 1u, v.y);
      store(m, n + 2u, v.z);
      store(m, n + 3u, v.w);
    }
  }
}

// dbias (N) += sum over the M rows of dout (M, N), in a fixed order: thread (x, y) of a
// workgroup sums rows y, y + BIAS_WY, ... of column x, then the BIAS_WY partial sums are
// added pairwise.
const BIAS_WX = 32u;
const BIAS_WY = 8u;
var<workgroup> bias_partial: array<f32, BIAS_WX * BIAS_WY>;

@compute @workgroup_size(BIAS_WX, BIAS_WY)
fn bias_backward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
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

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
// Four entry points, all blocked in registers (each thread owns TM x TN outputs):
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

@compute @workgroup_size(WX, WY)
fn matmul_regs(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  p = slice_params(wid.z);
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
  p = slice_params(wid.z);
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

// ---- matmul_tiled and matmul_tiled4: BM x BN tiles staged through workgroup memory (GPUs).
//
// Thread (tx, ty) owns the rows 4 * (ty + i4 * WY) + r and the columns 4 * (tx + j4 * WX) + r
// (r < 4). Tiles are k-major: row k of a tile holds BM (BN) values, so the compute loop reads
// each thread's rows and columns as 16-byte loads, neighbouring threads neighbouring vec4s.
//
// Bank conflicts (32 banks of 4 bytes): a tile row is RA (RB) vec4s, BM / 4 plus 1 or 2 to make
// it odd, so row k starts at bank 4 * (k * RA % 8) and 8 consecutive rows start at 8 different
// banks. Staging an operand that is contiguous in k ("mk" a, "nk" b), a warp reads runs of
// 8 k's (32 bytes) of 4 rows and stores them down 8 tile rows and across 4 columns: with
// unpadded rows of 128 floats all 8 rows would start at the same bank (an 8-way conflict);
// padded, the 32 stores hit 32 banks. The 16-byte path stores runs of 4 k's of 16 rows:
// rows k and k + 4 start 16 banks apart, again 32 banks. An operand contiguous in m or n
// ("km" a, "kn" b) is staged along tile rows, conflict-free either way, and the compute
// loop's loads (one row, consecutive vec4s or one broadcast vec4) are too.
//
// Prefetch: two buffers of each tile. While the workgroup multiplies the k-tile in one
// buffer, each thread loads its share of the next k-tile from global memory into registers
// (the loads are in flight during the FMAs), then stores it into the other buffer, and one
// barrier per k-tile orders both: stores into a buffer come after the barrier that ended the
// reads of it, reads after the barrier that ended the stores. One buffer would need a second
// barrier (the stores must wait for every thread's reads of the same buffer).
//
// matmul_tiled loads scalars, bounds-checked, so any shape and offset works. matmul_tiled4
// loads vec4s from the f32 views a4 and b4 and needs what matmul_regs4 needs (K, the
// vec4-loaded dimensions, leading dimensions and offsets multiples of 4: src/model/matmul.ts
// checks); per thread it issues 4 times fewer global loads. 16-bit operands keep the scalar
// path: a4 and b4 are f32 views (8-byte loads of 4 bf16 or f16 would need storage.ts's vec4
// accessors for them).
const NT = WX * WY; // threads per workgroup
const RA = BM / 4u + 1u + BM / 4u % 2u; // vec4s per tile_a row, odd
const RB = BN / 4u + 1u + BN / 4u % 2u;
const SA = BM * BK / NT; // elements of a tile_a buffer each thread stages (a multiple of 4)
const SB = BN * BK / NT;
const SA4 = SA / 4u;
const SB4 = SB / 4u;
var<workgroup> tile_a: array<vec4<mul>, 2u * BK * RA>; // buffer, k, m / 4 (component m % 4)
var<workgroup> tile_b: array<vec4<mul>, 2u * BK * RB>;

var<private> tile_m: u32; // first row and column of the workgroup's tile
var<private> tile_n: u32;
var<private> tile_acc: array<vec4f, TM * TN4>; // row i = 4 * i4 + r, column group j4
var<private> tile_part: array<vec4<mul>, TM * TN4>; // products since the last flush
var<private> next_a: array<vec4f, SA4>; // this thread's elements of the next k-tile
var<private> next_b: array<vec4f, SB4>;

// (m or n, k) of element e of a BK x `width` tile (scalar path), or of the first of the 4
// elements 4 * e4 .. + 3 (16-byte path). An operand contiguous in k is read in runs of 8 k's
// of one row (a 32-byte sector), then the next row; one contiguous in m or n row by row.
fn tile_slot(e: u32, width: u32, k_contiguous: bool) -> vec2u {
  if (k_contiguous) {
    return vec2u(e / 8u % width, e / (8u * width) * 8u + e % 8u);
  }
  return vec2u(e % width, e / width);
}

fn fetch_a(t: u32, k0: u32) {
  // @unroll
  for (var l = 0u; l < SA; l++) {
    let s = tile_slot(t + l * NT, BM, !A_KM);
    var v = 0.0;
    if (tile_m + s.x < p.M && k0 + s.y < p.K) {
      v = load_a(a_index(tile_m + s.x, k0 + s.y));
    }
    next_a[l / 4u][l % 4u] = v;
  }
}

fn fetch_b(t: u32, k0: u32) {
  // @unroll
  for (var l = 0u; l < SB; l++) {
    let s = tile_slot(t + l * NT, BN, B_NK);
    var v = 0.0;
    if (tile_n + s.x < p.N && k0 + s.y < p.K) {
      v = load_b(b_index(k0 + s.y, tile_n + s.x));
    }
    next_b[l / 4u][l % 4u] = v;
  }
}

fn stage_a(t: u32, buf: u32) {
  // @unroll
  for (var l = 0u; l < SA; l++) {
    let s = tile_slot(t + l * NT, BM, !A_KM);
    tile_a[(buf * BK + s.y) * RA + s.x / 4u][s.x % 4u] = mul(next_a[l / 4u][l % 4u]);
  }
}

fn stage_b(t: u32, buf: u32) {
  // @unroll
  for (var l = 0u; l < SB; l++) {
    let s = tile_slot(t + l * NT, BN, B_NK);
    tile_b[(buf * BK + s.y) * RB + s.x / 4u][s.x % 4u] = mul(next_b[l / 4u][l % 4u]);
  }
}

// The 16-byte path: 4 consecutive k's of a row, or 4 consecutive rows (columns) at one k.
fn fetch_a4(t: u32, k0: u32) {
  // @unroll
  for (var l = 0u; l < SA4; l++) {
    let s = tile_slot(4u * (t + l * NT), BM, !A_KM);
    var v = vec4f(0.0);
    if (tile_m + s.x < p.M && k0 + s.y < p.K) {
      v = a4[a_index(tile_m + s.x, k0 + s.y) / 4u];
    }
    next_a[l] = v;
  }
}

fn fetch_b4(t: u32, k0: u32) {
  // @unroll
  for (var l = 0u; l < SB4; l++) {
    let s = tile_slot(4u * (t + l * NT), BN, B_NK);
    var v = vec4f(0.0);
    if (tile_n + s.x < p.N && k0 + s.y < p.K) {
      v = b4[b_index(k0 + s.y, tile_n + s.x) / 4u];
    }
    next_b[l] = v;
  }
}

fn stage_a4(t: u32, buf: u32) {
  // @unroll
  for (var l = 0u; l < SA4; l++) {
    let s = tile_slot(4u * (t + l * NT), BM, !A_KM);
    let i = (buf * BK + s.y) * RA + s.x / 4u;
    if (A_KM) {
      tile_a[i] = vec4<mul>(next_a[l]);
    } else {
      // @unroll
      for (var r = 0u; r < 4u; r++) {
        tile_a[i + r * RA][s.x % 4u] = mul(next_a[l][r]);
      }
    }
  }
}

fn stage_b4(t: u32, buf: u32) {
  // @unroll
  for (var l = 0u; l < SB4; l++) {
    let s = tile_slot(4u * (t + l * NT), BN, B_NK);
    let i = (buf * BK + s.y) * RB + s.x / 4u;
    if (B_NK) {
      // @unroll
      for (var r = 0u; r < 4u; r++) {
        tile_b[i + r * RB][s.x % 4u] = mul(next_b[l][r]);
      }
    } else {
      tile_b[i] = vec4<mul>(next_b[l]);
    }
  }
}

// tile_acc (+)= the product of the k-tile in buffer `buf`.
fn multiply_tile(buf: u32, lid: vec3u) {
  let a0 = buf * BK * RA + lid.y;
  let b0 = buf * BK * RB + lid.x;
  var av: array<vec4<mul>, TM4>;
  var bv: array<vec4<mul>, TN4>;
  // @unroll
  for (var kk = 0u; kk < BK; kk++) {
    // @unroll
    for (var i4 = 0u; i4 < TM4; i4++) {
      av[i4] = tile_a[a0 + kk * RA + i4 * WY];
    }
    // @unroll
    for (var j4 = 0u; j4 < TN4; j4++) {
      bv[j4] = tile_b[b0 + kk * RB + j4 * WX];
    }
    // @unroll
    for (var i = 0u; i < TM; i++) {
      // @unroll
      for (var j4 = 0u; j4 < TN4; j4++) {
        tile_part[i * TN4 + j4] = fma(
          vec4<mul>(av[i / 4u][i % 4u]),
          bv[j4],
          tile_part[i * TN4 + j4],
        );
      }
    }
  }
  if (F16_PRODUCTS) {
    // @unroll
    for (var e = 0u; e < TM * TN4; e++) {
      tile_acc[e] += vec4f(tile_part[e]);
      tile_part[e] = vec4<mul>(0.0);
    }
  }
}

fn store_tile(lid: vec3u) {
  // @unroll
  for (var i = 0u; i < TM; i++) {
    // @unroll
    for (var j4 = 0u; j4 < TN4; j4++) {
      let m = tile_m + (lid.y + (i / 4u) * WY) * 4u + i % 4u;
      let n = tile_n + (lid.x + j4 * WX) * 4u;
      let v = tile_acc[i * TN4 + j4] + vec4f(tile_part[i * TN4 + j4]);
      store(m, n, v.x);
      store(m, n + 1u, v.y);
      store(m, n + 2u, v.z);
      store(m, n + 3u, v.w);
    }
  }
}

@compute @workgroup_size(WX, WY)
fn matmul_tiled(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(local_invocation_index) t: u32,
) {
  p = slice_params(wid.z);
  tile_m = wid.y * BM;
  tile_n = wid.x * BN;
  fetch_a(t, 0u);
  fetch_b(t, 0u);
  stage_a(t, 0u);
  stage_b(t, 0u);
  workgroupBarrier();
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    let buf = k0 / BK % 2u;
    let more = k0 + BK < p.K;
    if (more) {
      fetch_a(t, k0 + BK);
      fetch_b(t, k0 + BK);
    }
    multiply_tile(buf, lid);
    if (more) {
      stage_a(t, 1u - buf);
      stage_b(t, 1u - buf);
      workgroupBarrier();
    }
  }
  store_tile(lid);
}

// matmul_tiled with 16-byte global loads (the same steps).
@compute @workgroup_size(WX, WY)
fn matmul_tiled4(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(local_invocation_index) t: u32,
) {
  p = slice_params(wid.z);
  tile_m = wid.y * BM;
  tile_n = wid.x * BN;
  fetch_a4(t, 0u);
  fetch_b4(t, 0u);
  stage_a4(t, 0u);
  stage_b4(t, 0u);
  workgroupBarrier();
  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    let buf = k0 / BK % 2u;
    let more = k0 + BK < p.K;
    if (more) {
      fetch_a4(t, k0 + BK);
      fetch_b4(t, k0 + BK);
    }
    multiply_tile(buf, lid);
    if (more) {
      stage_a4(t, 1u - buf);
      stage_b4(t, 1u - buf);
      workgroupBarrier();
    }
  }
  store_tile(lid);
}

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

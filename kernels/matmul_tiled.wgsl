// ---- matmul_tiled and matmul_tiled4: BM x BN tiles staged through workgroup memory (GPUs).
// Appended to kernels/matmul.wgsl, which holds the header, bindings and helpers.
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

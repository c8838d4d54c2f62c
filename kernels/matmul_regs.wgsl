// matmul_regs and matmul_regs4: register blocking without workgroup memory, for CPU
// adapters (appended to kernels/matmul.wgsl, which holds the header, bindings and helpers).

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

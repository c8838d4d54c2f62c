// Per-row attention kernels, appended to attention.wgsl (layouts, bindings, helpers).
//
// Grid: (ceil(T / ROWS), NH, B). Each invocation owns one row: a query row in the forward and
// in backward_dq, a key row in backward_dkdv. Its row vectors (q, o, dq or k, v, dk, dv) live
// in registers; the other side streams through workgroup memory in BLOCK-row tiles, and tiles
// that the causal mask hides from every row of the workgroup are never loaded. Rows past T
// compute a copy of row T - 1 (keeping barriers uniform) and write nothing.
//
// This is the fastest form on a CPU adapter (lavapipe), where registers are plentiful.

// Rows per workgroup (one invocation each), set by the host.
const ROWS = 64u;
// Rows per streamed tile.
const BLOCK = 16u;

// Tiles of BLOCK rows of one head: keys and values (forward, dq), or queries and douts (dkdv).
var<workgroup> tile_a: array<vec4<dot_t>, BLOCK * HS4>;
var<workgroup> tile_b: array<vec4<dot_t>, BLOCK * HS4>;
var<workgroup> tile_lse: array<f32, BLOCK>;
var<workgroup> tile_delta: array<f32, BLOCK>;

// out = softmax(mask(scale * q k^T)) v, one query row per invocation; lse saved per row.
@compute @workgroup_size(ROWS)
fn attention_forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let T = params.T;
  let b = wid.z;
  let h = wid.y;
  let row0 = first_row_heavy_first(wid.x, nwg.x, ROWS);
  let row = row0 + lid;
  let t = min(row, T - 1u);

  var q: array<vec4<dot_t>, HS4>;
  let q_at = qkv_index(b, t, h, 0u);
  // @unroll
  for (var d = 0u; d < HS4; d++) {
    q[d] = vec4<dot_t>(load_qkv_f(q_at + d));
  }
  var o: array<vec4f, HS4>;
  var m = MASKED; // running max of the scores
  var l = 0.0; // running sum of exp(score - m)

  // Keys at or past the workgroup's last row are masked for all of its rows.
  let key_end = min(row0 + ROWS, T);
  for (var k0 = 0u; k0 < key_end; k0 += BLOCK) {
    workgroupBarrier(); // the previous tile is consumed
    for (var e = lid; e < BLOCK * HS4; e += ROWS) {
      let key = k0 + e / HS4;
      if (key < T) {
        let at = qkv_index(b, key, h, 1u) + e % HS4;
        tile_a[e] = vec4<dot_t>(load_qkv_f(at));
        tile_b[e] = vec4<dot_t>(load_qkv_f(at + params.NH * HS4));
      }
    }
    workgroupBarrier();

    var s: array<f32, BLOCK>;
    var m_new = m;
    for (var c = 0u; c < BLOCK; c++) {
      var dot_qk = 0.0;
      var part_qk = dot_t(0.0);
      // @unroll
      for (var d = 0u; d < HS4; d++) {
        dot_step(&dot_qk, &part_qk, q[d], tile_a[c * HS4 + d], d);
      }
      s[c] = select(MASKED, dot_qk * params.scale, k0 + c <= t);
      m_new = max(m_new, s[c]);
    }
    // Rescale what was accumulated under the old max (0 on the first tile, where l = o = 0).
    let correction = exp(m - m_new);
    l *= correction;
    // @unroll
    for (var d = 0u; d < HS4; d++) {
      o[d] *= correction;
    }
    for (var c = 0u; c < BLOCK; c++) {
      let p = exp(s[c] - m_new);
      l += p;
      // @unroll
      for (var d = 0u; d < HS4; d++) {
        o[d] += p * vec4f(tile_b[c * HS4 + d]);
      }
    }
    m = m_new;
  }

  if (row < T) {
    let o_at = btc_index(b, t, h);
    let inv_l = 1.0 / l;
    // @unroll
    for (var d = 0u; d < HS4; d++) {
      store_out_w(o_at + d, o[d] * inv_l);
    }
    lse_w[bht_index(b, h, t)] = m + log(l);
  }
}

// dq = scale * sum_keys ds * k with p = exp(scale q.k - lse), ds = p (dout.v - delta);
// also writes delta = dout.out for each query row, which backward_dkdv reads next.
@compute @workgroup_size(ROWS)
fn attention_backward_dq(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let T = params.T;
  let b = wid.z;
  let h = wid.y;
  let row0 = first_row_heavy_first(wid.x, nwg.x, ROWS);
  let row = row0 + lid;
  let t = min(row, T - 1u);

  var q: array<vec4<dot_t>, HS4>;
  var g: array<vec4<dot_t>, HS4>; // dout row
  let q_at = qkv_index(b, t, h, 0u);
  let o_at = btc_index(b, t, h);
  var delta = 0.0;
  // @unroll
  for (var d = 0u; d < HS4; d++) {
    q[d] = vec4<dot_t>(load_qkv(q_at + d));
    let g_d = load_dout(o_at + d);
    g[d] = vec4<dot_t>(g_d);
    delta += dot(g_d, load_out_r(o_at + d));
  }
  let lse = lse_dq[bht_index(b, h, t)];
  var dq: array<vec4f, HS4>;

  let key_end = min(row0 + ROWS, T);
  for (var k0 = 0u; k0 < key_end; k0 += BLOCK) {
    workgroupBarrier();
    for (var e = lid; e < BLOCK * HS4; e += ROWS) {
      let key = k0 + e / HS4;
      if (key < T) {
        let at = qkv_index(b, key, h, 1u) + e % HS4;
        tile_a[e] = vec4<dot_t>(load_qkv(at));
        tile_b[e] = vec4<dot_t>(load_qkv(at + params.NH * HS4));
      }
    }
    workgroupBarrier();

    for (var c = 0u; c < BLOCK; c++) {
      var dot_qk = 0.0;
      var dot_gv = 0.0;
      var part_qk = dot_t(0.0);
      var part_gv = dot_t(0.0);
      // @unroll
      for (var d = 0u; d < HS4; d++) {
        dot_step(&dot_qk, &part_qk, q[d], tile_a[c * HS4 + d], d);
        dot_step(&dot_gv, &part_gv, g[d], tile_b[c * HS4 + d], d);
      }
      let p = select(0.0, exp(dot_qk * params.scale - lse), k0 + c <= t);
      let ds = p * (dot_gv - delta);
      // @unroll
      for (var d = 0u; d < HS4; d++) {
        dq[d] += ds * vec4f(tile_a[c * HS4 + d]);
      }
    }
  }

  if (row < T) {
    // @unroll
    for (var d = 0u; d < HS4; d++) {
      store_dqkv(q_at + d, dq[d] * params.scale);
    }
    delta_w[bht_index(b, h, t)] = delta;
  }
}

// dk = scale * sum_queries ds * q, dv = sum_queries p * dout, one key row per invocation,
// queries streamed in order from the workgroup's first key (earlier queries cannot see it).
@compute @workgroup_size(ROWS)
fn attention_backward_dkdv(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let T = params.T;
  let b = wid.z;
  let h = wid.y;
  let row = wid.x * ROWS + lid;
  let j = min(row, T - 1u);

  var k: array<vec4<dot_t>, HS4>;
  var v: array<vec4<dot_t>, HS4>;
  let k_at = qkv_index(b, j, h, 1u);
  let v_at = k_at + params.NH * HS4;
  // @unroll
  for (var d = 0u; d < HS4; d++) {
    k[d] = vec4<dot_t>(load_qkv(k_at + d));
    v[d] = vec4<dot_t>(load_qkv(v_at + d));
  }
  var dk: array<vec4f, HS4>;
  var dv: array<vec4f, HS4>;

  // Earlier key blocks see more queries and already have the lowest workgroup ids.
  for (var q0 = wid.x * ROWS; q0 < T; q0 += BLOCK) {
    workgroupBarrier();
    for (var e = lid; e < BLOCK * HS4; e += ROWS) {
      let i = q0 + e / HS4;
      if (i < T) {
        tile_a[e] = vec4<dot_t>(load_qkv(qkv_index(b, i, h, 0u) + e % HS4));
        tile_b[e] = vec4<dot_t>(load_dout(btc_index(b, i, h) + e % HS4));
      }
    }
    if (lid < BLOCK && q0 + lid < T) {
      tile_lse[lid] = lse_dkdv[bht_index(b, h, q0 + lid)];
      tile_delta[lid] = delta_r[bht_index(b, h, q0 + lid)];
    }
    workgroupBarrier();

    for (var c = 0u; c < BLOCK; c++) {
      let i = q0 + c;
      var dot_qk = 0.0;
      var dot_gv = 0.0;
      var part_qk = dot_t(0.0);
      var part_gv = dot_t(0.0);
      // @unroll
      for (var d = 0u; d < HS4; d++) {
        dot_step(&dot_qk, &part_qk, tile_a[c * HS4 + d], k[d], d);
        dot_step(&dot_gv, &part_gv, tile_b[c * HS4 + d], v[d], d);
      }
      let p = select(0.0, exp(dot_qk * params.scale - tile_lse[c]), i >= j && i < T);
      let ds = p * (dot_gv - tile_delta[c]);
      // @unroll
      for (var d = 0u; d < HS4; d++) {
        dv[d] += p * vec4f(tile_b[c * HS4 + d]);
        dk[d] += ds * vec4f(tile_a[c * HS4 + d]);
      }
    }
  }

  if (row < T) {
    // @unroll
    for (var d = 0u; d < HS4; d++) {
      store_dqkv(k_at + d, dk[d] * params.scale);
      store_dqkv(v_at + d, dv[d]);
    }
  }
}


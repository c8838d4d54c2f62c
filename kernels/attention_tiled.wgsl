// FlashAttention-2 style attention kernels, appended to attention.wgsl (layouts, bindings,
// helpers). Made for GPUs: no thread keeps a whole head row in registers.
//
// A workgroup of TY x TX threads owns BR = RM * TY rows of one (b, h): query rows in the
// forward and dq, key rows in dkdv; those rows sit in workgroup memory (rows_tile), and the
// other side streams through it in tiles of BC = CN * TX rows (cols_tile). Thread (ty, tx) owns
//   - rows ty + TY * i (i < RM) of the block,
//   - columns tx + TX * j (j < CN) of each score tile: RM x CN scores in registers,
//   - vec4 columns tx + TX * j (j < DN = HS4 / TX) of each owned row's accumulators (out, dq,
//     or dk and dv): RM x DN vec4s in registers.
// Every loop that indexes registers is unrolled, so they stay registers. At HS = 64 (with the
// host's tiles) a thread holds about 72 live floats in the forward, 80 in dq and 56 in dkdv
// (counted from the code: accumulators, scores, operand fragments, row statistics).
// Scores go from their owner to the threads that need them for the second product through
// workgroup memory (tile_p). Statistics over a whole tile row (max, sum of p, delta) combine
// the TX per-thread partials through workgroup memory (row_part), always in tx order.
//
// Each kernel is compiled on its own with its tile sizes (src/model/attention_tiles.ts) and the
// number of row, column and p tiles it uses. Rows past T compute a copy of row T - 1 (keeping
// barriers uniform) and write nothing; columns past T are staged as zeros and masked.

// Threads across a row: TX divides HS4. Threads down the block, rows and score columns per
// thread; the host sets all of these.
const TX = 8u;
const TY = 16u;
const RM = 4u;
const CN = 2u;
const DN = HS4 / TX;
const BR = RM * TY;
const BC = CN * TX;
const THREADS = TX * TY;
// Head tiles used by the kernel: rows (q; q, dout; k, v), columns (k, v; k, v; q, dout) and
// score tiles (p; ds; p, ds).
const ROW_TILES = 1u;
const COL_TILES = 2u;
const P_TILES = 1u;
// Padded strides (vec4s of a head row, floats of a score row) so that the rows read at once by
// a warp fall on different banks.
const PAD = HS4 + 1u;
const PB = BC + 1u;

var<workgroup> rows_tile: array<vec4<dot_t>, ROW_TILES * BR * PAD>;
var<workgroup> cols_tile: array<vec4<dot_t>, COL_TILES * BC * PAD>;
var<workgroup> tile_p: array<f32, P_TILES * BR * PB>;
var<workgroup> row_part: array<f32, BR * TX>;
var<workgroup> col_lse: array<f32, BC>;
var<workgroup> col_delta: array<f32, BC>;

// Where element e (a row-major index over rows of HS4 vec4s) of a head tile goes in a padded tile.
fn padded(e: u32) -> u32 {
  return e / HS4 * PAD + e % HS4;
}

// s[i][j] = rows r_i . columns c_j of head tile `part` (of rows_tile and cols_tile), each an
// inner product over the head in dot_step's order.
fn tile_dots(part: u32, ty: u32, tx: u32) -> array<array<f32, CN>, RM> {
  var s: array<array<f32, CN>, RM>;
  var parts: array<array<dot_t, CN>, RM>;
  let r_at = part * BR * PAD + ty * PAD;
  let c_at = part * BC * PAD + tx * PAD;
  // @unroll
  for (var d = 0u; d < HS4; d++) {
    var x: array<vec4<dot_t>, RM>;
    var y: array<vec4<dot_t>, CN>;
    // @unroll
    for (var i = 0u; i < RM; i++) {
      x[i] = rows_tile[r_at + i * TY * PAD + d];
    }
    // @unroll
    for (var j = 0u; j < CN; j++) {
      y[j] = cols_tile[c_at + j * TX * PAD + d];
    }
    // @unroll
    for (var i = 0u; i < RM; i++) {
      // @unroll
      for (var j = 0u; j < CN; j++) {
        // dot_step's arithmetic (naga cannot pass pointers into these arrays).
        parts[i][j] += dot(x[i], y[j]);
        if (flushes(d)) {
          s[i][j] += f32(parts[i][j]);
          parts[i][j] = dot_t(0.0);
        }
      }
    }
  }
  return s;
}

// Sum (in tx order) of the TX partials that the threads of row r left in row_part.
fn row_sum(r: u32) -> f32 {
  var sum = 0.0;
  // @unroll
  for (var x = 0u; x < TX; x++) {
    sum += row_part[r * TX + x];
  }
  return sum;
}

// out = softmax(mask(scale * q k^T)) v over BR query rows; lse saved per row.
@compute @workgroup_size(THREADS)
fn attention_forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let T = params.T;
  let b = wid.z;
  let h = wid.y;
  let tx = lid % TX;
  let ty = lid / TX;
  let row0 = first_row_heavy_first(wid.x, nwg.x, BR);
  for (var e = lid; e < BR * HS4; e += THREADS) {
    let t = min(row0 + e / HS4, T - 1u);
    rows_tile[padded(e)] = vec4<dot_t>(load_qkv_f(qkv_index(b, t, h, 0u) + e % HS4));
  }
  var m: array<f32, RM>; // running max of each row's scores
  var l: array<f32, RM>; // this thread's share of each row's sum of exp(score - m)
  var o: array<array<vec4f, DN>, RM>;
  // @unroll
  for (var i = 0u; i < RM; i++) {
    m[i] = MASKED;
  }

  // Keys at or past the block's last row are masked for all of its rows.
  let key_end = min(row0 + BR, T);
  for (var k0 = 0u; k0 < key_end; k0 += BC) {
    workgroupBarrier(); // the previous tiles are consumed
    for (var e = lid; e < BC * HS4; e += THREADS) {
      let key = k0 + e / HS4;
      let at = qkv_index(b, min(key, T - 1u), h, 1u) + e % HS4;
      let in_t = key < T;
      let v_at = at + params.NH * HS4;
      cols_tile[padded(e)] = vec4<dot_t>(select(vec4f(), load_qkv_f(at), in_t));
      cols_tile[BC * PAD + padded(e)] = vec4<dot_t>(select(vec4f(), load_qkv_f(v_at), in_t));
    }
    workgroupBarrier();

    var s = tile_dots(0u, ty, tx);
    // @unroll
    for (var i = 0u; i < RM; i++) {
      let t = min(row0 + ty + i * TY, T - 1u);
      var m_part = MASKED;
      // @unroll
      for (var j = 0u; j < CN; j++) {
        s[i][j] = select(MASKED, s[i][j] * params.scale, k0 + tx + j * TX <= t);
        m_part = max(m_part, s[i][j]);
      }
      row_part[(ty + i * TY) * TX + tx] = m_part;
    }
    workgroupBarrier();
    // @unroll
    for (var i = 0u; i < RM; i++) {
      let r = ty + i * TY;
      var m_new = m[i];
      // @unroll
      for (var x = 0u; x < TX; x++) {
        m_new = max(m_new, row_part[r * TX + x]);
      }
      // Rescale what was accumulated under the old max (0 on the first tile: l = o = 0).
      let correction = exp(m[i] - m_new);
      l[i] *= correction;
      // @unroll
      for (var j = 0u; j < DN; j++) {
        o[i][j] *= correction;
      }
      // @unroll
      for (var j = 0u; j < CN; j++) {
        let p = exp(s[i][j] - m_new);
        l[i] += p;
        tile_p[r * PB + tx + j * TX] = p;
      }
      m[i] = m_new;
    }
    workgroupBarrier();
    // @unroll
    for (var i = 0u; i < RM; i++) {
      let p_at = (ty + i * TY) * PB;
      // @unroll
      for (var c = 0u; c < BC; c++) {
        let p = tile_p[p_at + c];
        // @unroll
        for (var j = 0u; j < DN; j++) {
          o[i][j] += p * vec4f(cols_tile[BC * PAD + c * PAD + tx + j * TX]);
        }
      }
    }
  }

  workgroupBarrier(); // the last tile's row_part reads are done
  // @unroll
  for (var i = 0u; i < RM; i++) {
    row_part[(ty + i * TY) * TX + tx] = l[i];
  }
  workgroupBarrier();
  // @unroll
  for (var i = 0u; i < RM; i++) {
    let row = row0 + ty + i * TY;
    let l_row = row_sum(ty + i * TY);
    if (row < T) {
      let o_at = btc_index(b, row, h) + tx;
      // @unroll
      for (var j = 0u; j < DN; j++) {
        store_out_w(o_at + j * TX, o[i][j] / l_row);
      }
      if (tx == 0u) {
        lse_w[bht_index(b, h, row)] = m[i] + log(l_row);
      }
    }
  }
}

// dq = scale * sum_keys ds * k with p = exp(scale q.k - lse), ds = p (dout.v - delta), over BR
// query rows; also writes delta = dout.out of each row, which backward_dkdv reads next.
@compute @workgroup_size(THREADS)
fn attention_backward_dq(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let T = params.T;
  let b = wid.z;
  let h = wid.y;
  let tx = lid % TX;
  let ty = lid / TX;
  let row0 = first_row_heavy_first(wid.x, nwg.x, BR);
  for (var e = lid; e < BR * HS4; e += THREADS) {
    let t = min(row0 + e / HS4, T - 1u);
    rows_tile[padded(e)] = vec4<dot_t>(load_qkv(qkv_index(b, t, h, 0u) + e % HS4));
    rows_tile[BR * PAD + padded(e)] = vec4<dot_t>(load_dout(btc_index(b, t, h) + e % HS4));
  }
  // delta of each owned row: this thread's vec4 columns, then the row's partials in tx order.
  // @unroll
  for (var i = 0u; i < RM; i++) {
    let o_at = btc_index(b, min(row0 + ty + i * TY, T - 1u), h) + tx;
    var part = 0.0;
    // @unroll
    for (var j = 0u; j < DN; j++) {
      part += dot(load_dout(o_at + j * TX), load_out_r(o_at + j * TX));
    }
    row_part[(ty + i * TY) * TX + tx] = part;
  }
  workgroupBarrier();
  var delta: array<f32, RM>;
  var lse: array<f32, RM>;
  // @unroll
  for (var i = 0u; i < RM; i++) {
    let row = row0 + ty + i * TY;
    delta[i] = row_sum(ty + i * TY);
    lse[i] = lse_dq[bht_index(b, h, min(row, T - 1u))];
    if (tx == 0u && row < T) {
      delta_w[bht_index(b, h, row)] = delta[i];
    }
  }
  var dq: array<array<vec4f, DN>, RM>;

  let key_end = min(row0 + BR, T);
  for (var k0 = 0u; k0 < key_end; k0 += BC) {
    workgroupBarrier();
    for (var e = lid; e < BC * HS4; e += THREADS) {
      let key = k0 + e / HS4;
      let at = qkv_index(b, min(key, T - 1u), h, 1u) + e % HS4;
      let in_t = key < T;
      let v_at = at + params.NH * HS4;
      cols_tile[padded(e)] = vec4<dot_t>(select(vec4f(), load_qkv(at), in_t));
      cols_tile[BC * PAD + padded(e)] = vec4<dot_t>(select(vec4f(), load_qkv(v_at), in_t));
    }
    workgroupBarrier();

    let s = tile_dots(0u, ty, tx);
    let dp = tile_dots(1u, ty, tx);
    // @unroll
    for (var i = 0u; i < RM; i++) {
      let t = min(row0 + ty + i * TY, T - 1u);
      // @unroll
      for (var j = 0u; j < CN; j++) {
        let p = select(0.0, exp(s[i][j] * params.scale - lse[i]), k0 + tx + j * TX <= t);
        tile_p[(ty + i * TY) * PB + tx + j * TX] = p * (dp[i][j] - delta[i]);
      }
    }
    workgroupBarrier();
    // @unroll
    for (var i = 0u; i < RM; i++) {
      let p_at = (ty + i * TY) * PB;
      // @unroll
      for (var c = 0u; c < BC; c++) {
        let ds = tile_p[p_at + c];
        // @unroll
        for (var j = 0u; j < DN; j++) {
          dq[i][j] += ds * vec4f(cols_tile[c * PAD + tx + j * TX]);
        }
      }
    }
  }

  // @unroll
  for (var i = 0u; i < RM; i++) {
    let row = row0 + ty + i * TY;
    if (row < T) {
      let q_at = qkv_index(b, row, h, 0u) + tx;
      // @unroll
      for (var j = 0u; j < DN; j++) {
        store_dqkv(q_at + j * TX, dq[i][j] * params.scale);
      }
    }
  }
}

// dk = scale * sum_queries ds * q, dv = sum_queries p * dout over BR key rows, queries streamed
// in order from the block's first key (earlier queries cannot see it).
@compute @workgroup_size(THREADS)
fn attention_backward_dkdv(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let T = params.T;
  let b = wid.z;
  let h = wid.y;
  let tx = lid % TX;
  let ty = lid / TX;
  // Earlier key blocks see more queries and already have the lowest workgroup ids.
  let key0 = wid.x * BR;
  for (var e = lid; e < BR * HS4; e += THREADS) {
    let k_at = qkv_index(b, min(key0 + e / HS4, T - 1u), h, 1u) + e % HS4;
    rows_tile[padded(e)] = vec4<dot_t>(load_qkv(k_at));
    rows_tile[BR * PAD + padded(e)] = vec4<dot_t>(load_qkv(k_at + params.NH * HS4));
  }
  var dk: array<array<vec4f, DN>, RM>;
  var dv: array<array<vec4f, DN>, RM>;

  for (var q0 = key0; q0 < T; q0 += BC) {
    workgroupBarrier();
    for (var e = lid; e < BC * HS4; e += THREADS) {
      let i = min(q0 + e / HS4, T - 1u);
      let in_t = q0 + e / HS4 < T;
      let q = load_qkv(qkv_index(b, i, h, 0u) + e % HS4);
      let g = load_dout(btc_index(b, i, h) + e % HS4);
      cols_tile[padded(e)] = vec4<dot_t>(select(vec4f(), q, in_t));
      cols_tile[BC * PAD + padded(e)] = vec4<dot_t>(select(vec4f(), g, in_t));
    }
    if (lid < BC) {
      let i = min(q0 + lid, T - 1u);
      col_lse[lid] = lse_dkdv[bht_index(b, h, i)];
      col_delta[lid] = delta_r[bht_index(b, h, i)];
    }
    workgroupBarrier();

    let s = tile_dots(0u, ty, tx);
    let dp = tile_dots(1u, ty, tx);
    // @unroll
    for (var i = 0u; i < RM; i++) {
      let key = min(key0 + ty + i * TY, T - 1u);
      let p_at = (ty + i * TY) * PB + tx;
      // @unroll
      for (var j = 0u; j < CN; j++) {
        let c = tx + j * TX;
        let query = q0 + c;
        let p = select(0.0, exp(s[i][j] * params.scale - col_lse[c]), query >= key && query < T);
        tile_p[p_at + j * TX] = p;
        tile_p[BR * PB + p_at + j * TX] = p * (dp[i][j] - col_delta[c]);
      }
    }
    workgroupBarrier();
    // @unroll
    for (var i = 0u; i < RM; i++) {
      let p_at = (ty + i * TY) * PB;
      // @unroll
      for (var c = 0u; c < BC; c++) {
        let p = tile_p[p_at + c];
        let ds = tile_p[BR * PB + p_at + c];
        // @unroll
        for (var j = 0u; j < DN; j++) {
          dv[i][j] += p * vec4f(cols_tile[BC * PAD + c * PAD + tx + j * TX]);
          dk[i][j] += ds * vec4f(cols_tile[c * PAD + tx + j * TX]);
        }
      }
    }
  }

  // @unroll
  for (var i = 0u; i < RM; i++) {
    let key = key0 + ty + i * TY;
    if (key < T) {
      let k_at = qkv_index(b, key, h, 1u) + tx;
      // @unroll
      for (var j = 0u; j < DN; j++) {
        store_dqkv(k_at + j * TX, dk[i][j] * params.scale);
        store_dqkv(k_at + params.NH * HS4 + j * TX, dv[i][j]);
      }
    }
  }
}

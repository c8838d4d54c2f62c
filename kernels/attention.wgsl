// Causal multi-head self-attention, flash style: online softmax, no (T, T) matrix.
// This file holds what both kernel sets share (layouts, bindings, index helpers); the host
// appends one of them: attention_rows.wgsl (a thread per row; the software-adapter path) or
// attention_tiled.wgsl (FlashAttention-2 register tiles; the GPU path).
//
// qkv, out, dout and dqkv go through the vec4 accessors of src/gpu/storage.ts (f32, bf16 or
// f16 storage); lse and delta are always f32.
//
// Arithmetic is f32 except the inner products q.k and dout.v over a head: their operands (in
// registers and workgroup tiles) are `dot_t`, f32, or f16 in f16 models on a device with
// shader-f16 (src/model/attention.ts sets it and FLUSH4). In f16 each vec4 dot and each
// partial sum of FLUSH4 of them (16 products) is f16, flushed into an f32 sum (dot_step);
// scores, softmax, lse, delta and the accumulated out, dq, dk and dv stay f32.
//
// Layouts (llm.c):
//   qkv   (B, T, 3C)  per (b, t): q (C), k (C), v (C); head h owns channels [h*HS, (h+1)*HS)
//   out   (B, T, C)   heads concatenated;  dout (B, T, C);  dqkv (B, T, 3C)
//   lse   (B, NH, T)  logsumexp of each query row's scaled scores, saved by the forward
//   delta (B, NH, T)  sum_d dout * out of each query row, backward scratch
// C = NH * HS. Tensors of C channels are bound as vec4 arrays (HS is a multiple of 4), so a
// row of one head is HS4 = HS / 4 vec4s and a (b, t) row of qkv is 3 * C4 vec4s.
//
// Determinism: every sum runs in a fixed order and each output element has a single writer,
// so the backward is the two-kernel FA2 form (dq over keys, then dk/dv over queries), with no
// atomics. Same inputs give bit-identical outputs.

// Head size (a multiple of 4), set by the host (specializeWgsl), which also unrolls the loops
// marked @unroll: they index per-thread registers.
const HS = 64u;
const HS4 = HS / 4u;
// vec4 dots per partial sum of an inner product (HS4: one sum, as in f32).
const FLUSH4 = HS4;
alias dot_t = f32;
// Score of a masked key: exp(MASKED - m) is exactly 0 for any finite running max m.
const MASKED: f32 = -3.0e38;

struct Params {
  T: u32,
  NH: u32,
  // 1 / sqrt(HS), rounded to f32 once on the host like the reference.
  scale: f32,
}
@group(0) @binding(0) var<uniform> params: Params;

// Bindings per entry point (a binding number is reused with another meaning by another entry).
// attention_forward:      1 out, 2 lse, 3 qkv
// attention_backward_dq:  1 dqkv, 2 delta (written), 3 dout, 4 qkv, 5 out, 6 lse
// attention_backward_dkdv: 1 dqkv, 2 delta (read), 3 dout, 4 qkv, 5 lse
@group(0) @binding(1) var<storage, read_write> out_w: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> lse_w: array<f32>;
@group(0) @binding(3) var<storage, read> qkv_f: array<vec4f>;

@group(0) @binding(1) var<storage, read_write> dqkv: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> delta_w: array<f32>;
@group(0) @binding(2) var<storage, read> delta_r: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<vec4f>;
@group(0) @binding(4) var<storage, read> qkv: array<vec4f>;
@group(0) @binding(5) var<storage, read> out_r: array<vec4f>;
@group(0) @binding(6) var<storage, read> lse_dq: array<f32>;
@group(0) @binding(5) var<storage, read> lse_dkdv: array<f32>;

// Index of the first vec4 of head h's q (part 0), k (1) or v (2) at (b, t) in qkv.
fn qkv_index(b: u32, t: u32, h: u32, part: u32) -> u32 {
  let C4 = params.NH * HS4;
  return (b * params.T + t) * 3u * C4 + part * C4 + h * HS4;
}

// Index of the first vec4 of head h at (b, t) in a (B, T, C) tensor.
fn btc_index(b: u32, t: u32, h: u32) -> u32 {
  return (b * params.T + t) * params.NH * HS4 + h * HS4;
}

// Index of (b, h, t) in a (B, NH, T) tensor.
fn bht_index(b: u32, h: u32, t: u32) -> u32 {
  return (b * params.NH + h) * params.T + t;
}

// Whether the partial sum of an inner product over a head is flushed into its f32 sum after
// step d (< HS4): after every FLUSH4 steps and after the last. The host unrolls the loops that
// ask, so d is a constant there and the test folds away.
fn flushes(d: u32) -> bool {
  return d % FLUSH4 == FLUSH4 - 1u || d == HS4 - 1u;
}

// Step d (< HS4) of an inner product over a head: part += x . y in dot_t, flushed into the f32
// sum as `flushes` says.
fn dot_step(sum: ptr<function, f32>, part: ptr<function, dot_t>, x: vec4<dot_t>, y: vec4<dot_t>, d: u32) {
  *part += dot(x, y);
  if (flushes(d)) {
    *sum += f32(*part);
    *part = dot_t(0.0);
  }
}

// First row of a forward or dq workgroup of `rows` query rows. Later query blocks see more
// keys, so they take the lowest workgroup ids and start first, leaving short blocks for the tail.
fn first_row_heavy_first(block: u32, blocks: u32, rows: u32) -> u32 {
  return (blocks - 1u - block) * rows;
}

// Token + position embedding, forward and backward. out, wte, wpe and dout go through the
// accessors of src/gpu/storage.ts (f32, bf16 or f16); the gradients dwte and dwpe are f32.
//
// wte (V,C) may be larger than one storage binding: every wte kernel sees rows [v0, v1) of it,
// bound at row v0, and handles only tokens in that range; the host issues one dispatch per range.
//
// dwte is summed without atomics from a token index the host builds with the batch
// (embedding.ts buildTokenIndex): positions grouped by token, each group in position order.
//   index = [U, start[0..N] (U + 1 used, start[U] = N), order[0..N)]   (u32, 2N + 2 entries)
// Group u holds positions order[start[u]..start[u+1]) that all carry token tokens[order[start[u]]].

struct Params { B: u32, T: u32, C: u32, v0: u32, v1: u32 }
@group(0) @binding(0) var<uniform> params: Params;

// embedding_forward: out (B,T,C) = wte[tokens[b,t]] + wpe[t] for tokens in [v0, v1)
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> tokens: array<u32>;
@group(0) @binding(3) var<storage, read> wte: array<f32>;
@group(0) @binding(4) var<storage, read> wpe: array<f32>;

// embedding_backward_wpe: dwpe (T,C) += sum over b of dout (B,T,C)
@group(0) @binding(1) var<storage, read_write> dwpe: array<f32>;
@group(0) @binding(2) var<storage, read> wpe_dout: array<f32>;

// embedding_backward_wte: dwte (rows v0..v1 of (V,C)) += dout rows of each token's positions
@group(0) @binding(1) var<storage, read_write> dwte: array<f32>;
@group(0) @binding(2) var<storage, read> index: array<u32>;
@group(0) @binding(3) var<storage, read> wte_tokens: array<u32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;

fn linear_workgroup(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.x + wid.y * nwg.x;
}

// One thread per output element, 64 per workgroup.
@compute @workgroup_size(64)
fn embedding_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                     @builtin(local_invocation_index) lid: u32) {
  let C = params.C;
  let i = linear_workgroup(wid, nwg) * 64u + lid;
  if (i >= params.B * params.T * C) { return; }
  let n = i / C;
  let c = i % C;
  let token = tokens[n];
  if (token < params.v0 || token >= params.v1) { return; }
  let t = n % params.T;
  store_out(i, load_wte((token - params.v0) * C + c) + load_wpe(t * C + c));
}

// One thread per (t, c), adding the B batch rows in order.
@compute @workgroup_size(64)
fn embedding_backward_wpe(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                          @builtin(local_invocation_index) lid: u32) {
  let TC = params.T * params.C;
  let i = linear_workgroup(wid, nwg) * 64u + lid;
  if (i >= TC) { return; }
  var sum = 0.0;
  for (var b = 0u; b < params.B; b++) { sum += load_wpe_dout(b * TC + i); }
  dwpe[i] += sum;
}

// One workgroup per token group (N groups at most), 256 threads over channels: a frequent token
// (EOT, ".") has hundreds of positions, so its workgroup does the most sequential work.
@compute @workgroup_size(256)
fn embedding_backward_wte(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                          @builtin(local_invocation_index) lid: u32) {
  let N = params.B * params.T;
  let C = params.C;
  let u = linear_workgroup(wid, nwg);
  if (u >= index[0]) { return; }
  let first = index[1u + u];
  let last = index[2u + u];
  let token = wte_tokens[index[N + 2u + first]];
  if (token < params.v0 || token >= params.v1) { return; }
  let row = (token - params.v0) * C;
  for (var c = lid; c < C; c += 256u) {
    var sum = 0.0;
    for (var k = first; k < last; k++) { sum += load_dout(index[N + 2u + k] * C + c); }
    dwte[row + c] += sum;
  }
}

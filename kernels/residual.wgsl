// Residual connection over n elements, forward and backward: each thread owns a pair of
// elements (one u32 word of a bf16 tensor), 64 threads per workgroup on a 2-D grid. Tensors are
// read and written through the accessors of src/gpu/storage.ts (f32, bf16 or f16).

struct Params { n: u32 }
@group(0) @binding(0) var<uniform> params: Params;

// residual_forward:   out (n) = a (n) + b (n)
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
// residual_backward:  da (n) += dout (n), db (n) += dout (n)
@group(0) @binding(1) var<storage, read_write> da: array<f32>;
@group(0) @binding(2) var<storage, read_write> db: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;

// First element of this thread's pair.
fn pair_index(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return ((wid.x + wid.y * nwg.x) * 64u + lid) * 2u;
}

@compute @workgroup_size(64)
fn residual_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_index) lid: u32) {
  let i = pair_index(wid, nwg, lid);
  if (i + 1u < params.n) {
    store2_out(i, load_a(i) + load_b(i), load_a(i + 1u) + load_b(i + 1u));
  } else if (i < params.n) {
    store_out(i, load_a(i) + load_b(i));
  }
}

@compute @workgroup_size(64)
fn residual_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                     @builtin(local_invocation_index) lid: u32) {
  let i = pair_index(wid, nwg, lid);
  if (i + 1u < params.n) {
    let g0 = load_dout(i);
    let g1 = load_dout(i + 1u);
    store2_da(i, load_da(i) + g0, load_da(i + 1u) + g1);
    store2_db(i, load_db(i) + g0, load_db(i + 1u) + g1);
  } else if (i < params.n) {
    let g = load_dout(i);
    store_da(i, load_da(i) + g);
    store_db(i, load_db(i) + g);
  }
}

import { assertEquals, assertRejects } from "./_assert.ts";
import { requestGpu } from "../src/gpu/device.ts";
import { readF32, uploadBuffer } from "../src/gpu/buffer.ts";
import { grid, Kernel, submit } from "../src/gpu/kernel.ts";

const SCALE = `
struct Params { n: u32, factor: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (i < params.n) { x[i] = x[i] * params.factor; }
}`;

Deno.test("gpu: a kernel over a 2-D grid touches every element once", async () => {
  const gpu = await requestGpu();
  const n = 70_000 * 64 + 3; // more than 65,535 workgroups
  const x = uploadBuffer(gpu, new Float32Array(n).fill(1.5), "x");
  const kernel = await Kernel.create(gpu, { label: "scale", code: SCALE });
  const params = new ArrayBuffer(8);
  new Uint32Array(params, 0, 1)[0] = n;
  new Float32Array(params, 4, 1)[0] = 2;
  const dispatch = kernel.bind(grid(Math.ceil(n / 64)), [x], new Uint8Array(params));
  submit(gpu, [dispatch]);
  const out = await readF32(gpu, x);
  assertEquals(out.length >= n, true);
  assertEquals(out.slice(0, n).every((v) => v === 3), true);
  x.destroy();
  dispatch.destroy();
});

Deno.test("gpu: a WGSL compile error is thrown with the kernel's name", async () => {
  const gpu = await requestGpu();
  await assertRejects(
    () => Kernel.create(gpu, { label: "broken_kernel", code: "fn main( {" }),
    Error,
    "broken_kernel",
  );
});

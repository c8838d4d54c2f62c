/**
 * Time of a list of prepared dispatches on the GPU, for autotuning: with timestamp queries
 * around one compute pass when the device has `timestamp-query`, else wall clock around a
 * submit and `onSubmittedWorkDone` (which includes the submit's latency: the list is repeated
 * so that the GPU's work dominates).
 */
import type { Gpu } from "../gpu/device.ts";
import type { Dispatch } from "../gpu/kernel.ts";

/** Milliseconds a timed run aims for (the list is repeated up to {@link MAX_REPEATS} times). */
const RUN_MS = 10;
const MAX_REPEATS = 64;

/** Milliseconds of one run of `dispatches`: the fastest of `trials` timed runs, after a warm-up. */
export async function timeDispatches(
  gpu: Gpu,
  dispatches: readonly Dispatch[],
  trials = 2,
): Promise<number> {
  const time = gpu.hasTimestamps ? timedPass : wallClock;
  const first = await time(gpu, dispatches, 1);
  const repeats = Math.max(1, Math.min(MAX_REPEATS, Math.ceil(RUN_MS / Math.max(first, 1e-3))));
  let best = Infinity;
  for (let t = 0; t < trials; t++) {
    best = Math.min(best, (await time(gpu, dispatches, repeats)) / repeats);
  }
  return best;
}

function encode(pass: GPUComputePassEncoder, dispatches: readonly Dispatch[], repeats: number) {
  for (let r = 0; r < repeats; r++) for (const d of dispatches) d.encode(pass);
  pass.end();
}

async function wallClock(gpu: Gpu, dispatches: readonly Dispatch[], repeats: number) {
  await gpu.device.queue.onSubmittedWorkDone();
  const encoder = gpu.device.createCommandEncoder();
  encode(encoder.beginComputePass(), dispatches, repeats);
  const start = performance.now();
  gpu.device.queue.submit([encoder.finish()]);
  await gpu.device.queue.onSubmittedWorkDone();
  return performance.now() - start;
}

async function timedPass(gpu: Gpu, dispatches: readonly Dispatch[], repeats: number) {
  const device = gpu.device;
  const querySet = device.createQuerySet({ type: "timestamp", count: 2 });
  const resolved = device.createBuffer({
    size: 16,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const read = device.createBuffer({
    size: 16,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  try {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass({
      timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
    });
    encode(pass, dispatches, repeats);
    encoder.resolveQuerySet(querySet, 0, 2, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, read, 0, 16);
    device.queue.submit([encoder.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    gpu.throwIfFailed("matmul autotune: timing");
    const [begin, end] = new BigUint64Array(read.getMappedRange());
    return Number(end - begin) / 1e6;
  } finally {
    querySet.destroy();
    resolved.destroy();
    read.destroy();
  }
}

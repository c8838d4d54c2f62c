/**
 * A rank program for grad_sync_test.ts (real processes, shared memory, real WebGPU):
 *
 *   deno run -A tests/_grad_sync_rank.ts --nproc N <outDir> <bucketBytes>...
 *
 * Trains a small model 3 optimizer steps on rank-specific tokens, once with the whole-buffer
 * all-reduce (download, allReduceMean, upload: the trainer's path before GradSync) and once
 * with GradSync per bucket size, each from the same weights, with 1 and with 2 micro-steps
 * per step. Writes the final parameters and the losses to
 * <outDir>/rank<r>.accum<A>.<whole|bucketBytes>.{params,losses}.bin and prints
 * "accum <A> bucket <bytes>: <n> buckets" for each GradSync.
 */
import { createCommunicator } from "../src/distributed/communicator.ts";
import { launch, launchPlan } from "../src/distributed/launcher.ts";
import { GradSync } from "../src/distributed/grad_sync.ts";
import { requestGpu } from "../src/gpu/device.ts";
import { presetConfig } from "../src/model/config.ts";
import { GPT2 } from "../src/model/gpt2.ts";
import { initParams } from "../src/model/init.ts";
import { paramLayout } from "../src/model/params.ts";

/** The model: tiny, with biases, an odd vocabulary (every layout case: 1-D tensors, padding). */
export const CONFIG = presetConfig("tiny", { vocabSize: 101, bias: true });
const B = 2, T = 16, STEPS = 3;

const nprocAt = Deno.args.indexOf("--nproc");
const plan = launchPlan(nprocAt < 0 ? undefined : Number(Deno.args[nprocAt + 1]));
if (plan) Deno.exit(await launch(plan));

const [outDir, ...bucketSizes] = Deno.args.filter((_, i) => i !== nprocAt && i !== nprocAt + 1);
const comm = await createCommunicator({ dist: "shm" });
const gpu = await requestGpu();
const init = initParams(paramLayout(CONFIG), 7);
const zeros = new Float32Array(init.length);

/** Rank-specific token ids for one micro-step: the ranks' gradients differ. */
function tokens(step: number, micro: number): Uint32Array {
  let x = 12345 + 1000 * comm.rank + 100 * step + 10 * micro;
  return Uint32Array.from({ length: B * T + 1 }, () => (x = (x * 1103515245 + 12345) >>> 0) % 101);
}

for (const accum of [1, 2]) {
  const model = await GPT2.create(gpu, CONFIG, { B, T, gradAccumSteps: accum });
  await model.setOptimizer({
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weightDecay: 0.1,
    gradClip: 1,
    optimizer: "adamw",
  });
  const host = comm.hostBuffer(model.layout.totalFloats);
  /** Trains from `init`; `sync` null is the whole-buffer path. Writes params and losses. */
  const run = async (label: string, sync: GradSync | null) => {
    model.upload("params", init);
    model.upload("m", zeros);
    model.upload("v", zeros);
    const losses = new Float32Array(STEPS);
    for (let step = 1; step <= STEPS; step++) {
      model.zeroGrads();
      for (let micro = 0; micro < accum; micro++) {
        const t = tokens(step, micro);
        model.uploadBatch(t.subarray(0, B * T), t.subarray(1));
        if (sync && micro === accum - 1) await sync.lastMicroStep();
        else model.step();
      }
      if (!sync) {
        await model.downloadInto("grads", host);
        await comm.allReduceMean(host);
        model.upload("grads", host);
      }
      model.optimizerStep(step, 1e-2);
      losses[step - 1] = (await model.readStepStats())[0].loss;
    }
    const out = `${outDir}/rank${comm.rank}.accum${accum}.${label}`;
    await Deno.writeFile(
      `${out}.params.bin`,
      new Uint8Array((await model.download("params")).buffer),
    );
    await Deno.writeFile(`${out}.losses.bin`, new Uint8Array(losses.buffer));
  };
  await run("whole", null);
  for (const bytes of bucketSizes) {
    using sync = new GradSync(model, comm, { bucketBytes: Number(bytes) });
    if (comm.rank === 0) {
      console.log(`accum ${accum} bucket ${bytes}: ${sync.buckets.length} buckets`);
    }
    await run(bytes, sync);
  }
  model.destroy();
}
await comm.close();

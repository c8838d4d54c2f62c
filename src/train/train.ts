/**
 * `deno task train`: the main job. One process per rank; rank 0 logs and checkpoints.
 *
 * The loop, top to bottom (nanoGPT's train.py shape):
 *   eval at the start and every `evalInterval` updates;
 *   each step: zero grads, `gradAccum` micro-steps (upload batch, forward+backward),
 *   all-reduce the gradients across ranks, clip + AdamW at the scheduled lr;
 *   every `logInterval` steps read the loss and grad norm back (the only waits on the GPU);
 *   checkpoint every `checkpointInterval` updates and at the end; then sample.
 */
import { join } from "node:path";
import type { Gpu } from "../gpu/device.ts";
import { GPT2 } from "../model/gpt2.ts";
import { evaluate } from "./evaluate.ts";
import { DataLoader, EvalLoader } from "../data/loader.ts";
import { listSplit } from "../data/splits.ts";
import { learningRate } from "../optim/schedule.ts";
import { type Communicator, sharedFloat32 } from "../distributed/communicator.ts";
import { checkRanksAgree } from "../distributed/agree.ts";
import { latestCheckpoint, saveCheckpoint } from "../io/checkpoint.ts";
import { resolveTrainConfig, type TrainConfig, type TrainFlags } from "./options.ts";
import { ensureData, evalStepsThatFit } from "./data_source.ts";
import { loadStart } from "./model_source.ts";
import { RunLog } from "./run_log.ts";
import { formatDuration } from "../log/progress.ts";
import { Rng } from "../model/rng.ts";
import { peakTflops, trainingFlopsPerToken } from "./mfu.ts";
import { sampleText } from "./sample.ts";

/** Run one rank of a training job. */
export async function train(
  config: TrainConfig,
  { comm, gpu }: { comm: Communicator; gpu: Gpu },
): Promise<void> {
  const rank0 = comm.rank === 0;
  const say = (line: string) => rank0 && console.log(line);
  say(`recipe: ${config.recipe}: ${config.recipeReason}`);

  const data = await ensureData(config.data, comm);
  const checkpoints = join(config.out, "checkpoints");
  const resumeFrom = config.resume ? latestCheckpoint(checkpoints) : null;
  if (config.resume && !resumeFrom) say(`no checkpoint in ${checkpoints}: starting from scratch`);
  const start = await loadStart(config, resumeFrom);
  const { B, T } = { B: config.batchSize, T: config.seqLen };
  const model = await GPT2.create(gpu, start.modelConfig, {
    B,
    T,
    gradAccumSteps: config.gradAccum,
    historySteps: config.logInterval,
  });
  model.upload("params", start.params);
  if (start.m && start.v) {
    model.upload("m", start.m);
    model.upload("v", start.v);
  }
  model.setOptimizer({
    beta1: config.beta1,
    beta2: config.beta2,
    eps: config.eps,
    weightDecay: config.weightDecay,
    gradClip: config.gradClip,
  });
  const geometry = { B, T, rank: comm.rank, worldSize: comm.worldSize };
  using loader = new DataLoader(listSplit(data, "train"), {
    ...geometry,
    vocab: start.modelConfig.vocabSize,
  });
  if (start.loaderState) loader.restore(start.loaderState);
  using evalLoader = config.evalInterval > 0
    ? new EvalLoader(listSplit(data, "val"), {
      ...geometry,
      steps: evalStepsThatFit(data, B * T, config.evalSteps),
    })
    : null;
  const rng = start.rngState ? Rng.fromState(start.rngState) : new Rng(config.seed);
  const log = rank0 ? await RunLog.open(config.out, config.maxSteps, start.step) : null;

  const tokensPerStep = B * T * config.gradAccum * comm.worldSize;
  const peak = config.peakTflops ?? peakTflops(gpu.name);
  const flopsPerStep = trainingFlopsPerToken(start.modelConfig, T) * tokensPerStep;
  say(
    `model ${config.model}: ${start.layoutFloats.toLocaleString("en-US")} parameters | ` +
      `${tokensPerStep.toLocaleString("en-US")} tokens/step = ${B} x ${T} x ${config.gradAccum} ` +
      `accum x ${comm.worldSize} ranks | steps ${start.step}..${config.maxSteps}`,
  );

  /** Mean val loss over ranks; every rank must call it. */
  const runEval = async (step: number) => {
    if (!evalLoader) return;
    const t0 = performance.now();
    const loss = new Float32Array([await evaluate(model, evalLoader)]);
    await comm.allReduceMean(loss);
    log?.eval(step, loss[0], evalLoader.steps, (performance.now() - t0) / 1000);
  };
  // Rank 0 writes checkpoints in the background while training goes on; the next save (and
  // the end of the run) waits for the previous one, and a failed write stops the run there.
  let writing: Promise<unknown> = Promise.resolve();
  /** Stop a diverged run once the checkpoint being written has landed, and name it. */
  const diverged = async (what: string): Promise<never> => {
    await writing;
    const last = latestCheckpoint(checkpoints);
    throw new Error(
      `${what} ${last ? `The last good checkpoint is ${last}.` : "No checkpoint was written."}`,
    );
  };
  const save = async (step: number) => {
    await writing;
    const params = await model.download("params");
    await checkRanksAgree(comm, params, `the parameters after step ${step}`);
    if (!params.every(Number.isFinite)) {
      await diverged(`step ${step}: the parameters hold NaN or Inf; not saving them.`);
    }
    if (rank0) {
      const [m, v] = [await model.download("m"), await model.download("v")];
      writing = saveCheckpoint(checkpoints, {
        step,
        layout: model.layout.tensors,
        params,
        m,
        v,
        config,
        modelConfig: start.modelConfig,
        loaderState: loader.state(),
        rngState: rng.state(),
      });
      writing.catch(() => {}); // reported when awaited: at the next save or the end
    }
  };

  const lrAt = (step: number) =>
    learningRate(step, {
      maxLr: config.lr,
      minLr: config.minLr,
      warmupSteps: config.warmupSteps,
      maxSteps: config.maxSteps,
    });
  let lastLog = { time: performance.now(), step: start.step };
  /** Read back the steps since the last log (one wait) and report them; stop on NaN/Inf. */
  const logSteps = async (done: number) => {
    const stats = await model.readStepStats();
    const losses = Float32Array.from(stats, (s) => s.loss);
    await comm.allReduceMean(losses);
    const now = performance.now();
    const ms = (now - lastLog.time) / (done - lastLog.step);
    lastLog = { time: now, step: done };
    for (const [i, { gradNorm }] of stats.entries()) {
      const step = done - stats.length + 1 + i;
      const loss = losses[i];
      if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
        await diverged(`step ${step}: the loss is ${loss} (grad norm ${gradNorm}); stopping.`);
      }
      log?.step({
        step,
        loss,
        lr: lrAt(step - 1),
        gradNorm,
        ms,
        tokensPerS: tokensPerStep / (ms / 1000),
        mfu: peak ? flopsPerStep / (ms / 1000) / (peak * 1e12) : undefined,
        etaSeconds: (config.maxSteps - step) * ms / 1000,
      });
    }
  };

  // Shared memory: the all-reduce Worker sums the gradients in place, without copies.
  const gradsHost = comm.worldSize > 1 ? sharedFloat32(model.layout.totalFloats) : null;
  const started = performance.now();
  if (start.step === 0) await runEval(0);
  for (let step = start.step; step < config.maxSteps; step++) {
    model.zeroGrads();
    for (let micro = 0; micro < config.gradAccum; micro++) {
      const batch = loader.next();
      model.uploadBatch(batch.inputs, batch.targets);
      model.step();
    }
    if (gradsHost) {
      await model.downloadInto("grads", gradsHost);
      await comm.allReduceMean(gradsHost);
      model.upload("grads", gradsHost);
    }
    model.optimizerStep(step + 1, lrAt(step));

    const done = step + 1;
    const checkpointDue = done === config.maxSteps ||
      (config.checkpointInterval > 0 && done % config.checkpointInterval === 0);
    const evalDue = config.evalInterval > 0 && done % config.evalInterval === 0;
    if (done % config.logInterval === 0 || checkpointDue || evalDue) await logSteps(done);
    const paused = performance.now(); // ms/step leaves out evals and saves
    if (evalDue) await runEval(done);
    if (checkpointDue) await save(done);
    lastLog.time += performance.now() - paused;
  }
  await writing;
  log?.close();
  const seconds = (performance.now() - started) / 1000;
  say(
    `done: ${config.maxSteps - start.step} steps in ${formatDuration(seconds)} | ` +
      `train loss ${log?.lastLoss?.toFixed(4) ?? "-"} | val loss ` +
      (log?.firstValLoss === undefined
        ? "-"
        : `${log.firstValLoss.toFixed(4)} -> ${log.lastValLoss!.toFixed(4)}`) +
      ` | checkpoint ${latestCheckpoint(checkpoints) ?? "-"}`,
  );

  if (rank0 && config.sampleTokens > 0) {
    console.log(`sample (${config.sampleTokens} tokens, temperature 1.0, top-k 40):`);
    await sampleText(model, {
      prompt: "",
      tokens: config.sampleTokens,
      temperature: 1,
      topK: 40,
      rng,
      write: (text) => Deno.stdout.writeSync(new TextEncoder().encode(text)),
    });
    console.log();
  }
  model.destroy();
}

/**
 * The training loop: one rank of a `deno task train` job, top to bottom like nanoGPT's
 * train.py.
 *
 * Steps count updates done: step 0 is the starting weights, step s the weights after the s-th
 * AdamW update, which uses the schedule's lr at s - 1 (its 0-based index). Logs, evals and
 * checkpoints at step s all see the weights after update s, and a checkpoint at step s resumes
 * with update s + 1.
 *
 * Rank 0 alone owns the run folder: it holds its lock, prints, logs and writes checkpoints.
 * The objects for that (`lock`, `log`) are null on the other ranks, so rank-0-only work reads
 * `log?.` below; the Checkpointer is called on every rank (the ranks check that they agree)
 * and writes on rank 0.
 */
import { join } from "node:path";
import type { Gpu } from "../gpu/device.ts";
import { GPT2 } from "../model/gpt2.ts";
import { Rng } from "../model/rng.ts";
import { DataLoader, EvalLoader, type LoaderState } from "../data/loader.ts";
import { listSplit } from "../data/splits.ts";
import { learningRate, scaledSchedule } from "../optim/schedule.ts";
import type { Communicator } from "../distributed/communicator.ts";
import { GradSync } from "../distributed/grad_sync.ts";
import { formatDuration } from "../log/progress.ts";
import { writeAtomic } from "../io/atomic.ts";
import type { TrainConfig } from "./options.ts";
import { claimRunFolder } from "./run_folder.ts";
import { ensureData, evalStepsThatFit } from "./data_source.ts";
import { loadStart } from "./model_source.ts";
import { RunLog } from "./run_log.ts";
import { Checkpointer } from "./checkpointer.ts";
import { evaluate } from "./evaluate.ts";
import { HellaSwagEval } from "./hellaswag.ts";
import { peakTflops, trainingFlopsPerToken } from "./mfu.ts";
import { sampleText } from "./sample.ts";
import { StepSizer } from "./step_budget.ts";

/** Run one rank of a training job. */
export async function train(
  config: TrainConfig,
  { comm, gpu }: { comm: Communicator; gpu: Gpu },
): Promise<void> {
  const rank0 = comm.rank === 0;
  // Before anything else, so that a second trainer on this folder fails at once.
  using _lock = rank0 ? await claimRunFolder(config) : null;
  const start = await loadStart(config);
  // null: --time-budget fixes it after timing the first steps (step_budget.ts).
  let maxSteps = start.maxSteps;
  const data = await ensureData(config.data, comm);

  // Data, model, optimizer and RNG, as of step `start.step` (the data first: it fails faster).
  const { B, T } = { B: config.batchSize, T: config.seqLen };
  const geometry = {
    B,
    T,
    rank: comm.rank,
    worldSize: comm.worldSize,
    vocab: start.modelConfig.vocabSize,
    vocabFrom: start.checkpoint
      ? `the model in ${start.checkpoint}`
      : config.initFrom
      ? `the model from --init-from ${config.initFrom}`
      : `the --model ${config.model} model`,
  };
  using loader = new DataLoader(listSplit(data, "train"), geometry);
  if (start.checkpoint) {
    try {
      loader.restore(start.loaderState as LoaderState);
    } catch (e) {
      throw new Error(
        `${start.checkpoint}: its data position does not fit the train split of ${data} ` +
          `(saved with another --data?): ${(e as Error).message}`,
      );
    }
  }
  using evalLoader = config.evalInterval > 0
    ? new EvalLoader(listSplit(data, "val"), {
      ...geometry,
      steps: evalStepsThatFit(data, B * T, config.evalSteps),
    })
    : null;
  const hellaswag = config.hellaswag
    ? await HellaSwagEval.open(config.hellaswag, {
      limit: config.hellaswagLimit,
      vocabSize: start.modelConfig.vocabSize,
      comm,
    })
    : null;
  // The logs change only once the run is known to start.
  const log = rank0
    ? await RunLog.open(config.out, maxSteps, config.resume ? start.step : null)
    : null;
  log?.say(`recipe: ${config.recipe}: ${config.recipeReason}`);
  start.warnings.forEach((line) => log?.warn(line));
  start.notes.forEach((line) => log?.say(line));
  // The model's matmuls tune (or read the cache) as it is created: rank 0 first, then the
  // others read its choices from the cache, so every rank of a host runs the same kernels.
  gpu.autotune = config.autotune;
  if (!rank0) await comm.barrier();
  const model = await GPT2.create(gpu, start.modelConfig, {
    B,
    T,
    gradAccumSteps: config.gradAccum,
    historySteps: config.logInterval,
    precision: config.precision,
    lossScale: { initial: start.lossScale, skippedSteps: start.skippedSteps },
  });
  if (rank0) await comm.barrier();
  model.upload("params", start.params);
  if (start.m && start.v) {
    model.upload("m", start.m);
    model.upload("v", start.v);
  }
  await model.setOptimizer({
    beta1: config.beta1,
    beta2: config.beta2,
    eps: config.eps,
    weightDecay: config.weightDecay,
    gradClip: config.gradClip,
    optimizer: config.optimizer,
  });
  const rng = start.rngState ? Rng.fromState(start.rngState) : new Rng(config.seed);
  const checkpointer = new Checkpointer({
    dir: join(config.out, "checkpoints"),
    comm,
    writes: rank0,
    model,
    metadata: () => ({
      config: { ...config, maxSteps },
      modelConfig: start.modelConfig,
      loaderState: loader.state(),
      rngState: rng.state(),
      trainerState: lossScale
        ? { lossScale: lossScale.scale, skippedSteps: lossScale.skippedSteps }
        : null,
    }),
    lastGood: start.checkpoint,
  });

  // Until --time-budget fixes maxSteps, only warmup steps run, whose lr does not depend on it.
  const schedule = () => ({
    maxLr: config.lr,
    minLr: config.minLr,
    warmupSteps: config.warmupSteps,
    maxSteps: maxSteps ?? Infinity,
  });
  const lrOf = (step: number) => learningRate(step - 1, schedule());
  const muonLrOf = (step: number) =>
    learningRate(step - 1, scaledSchedule(schedule(), config.muonLr));
  const every = (interval: number, step: number) => interval > 0 && step % interval === 0;
  const tokensPerStep = B * T * config.gradAccum * comm.worldSize;
  const peak = config.peakTflops ?? peakTflops(gpu.name);
  const flopsPerStep = trainingFlopsPerToken(start.modelConfig, T) * tokensPerStep;
  const modelName = config.initFrom
    ? `from ${config.initFrom} (L${start.modelConfig.numLayers} C${start.modelConfig.channels})`
    : config.model;
  log?.say(
    `model ${modelName}: ${start.layoutFloats.toLocaleString("en-US")} parameters | ` +
      `${tokensPerStep.toLocaleString("en-US")} tokens/step = ${B} x ${T} x ${config.gradAccum} ` +
      `accum x ${comm.worldSize} ranks | steps ${start.step}..${maxSteps ?? "?"}`,
  );
  /** Val loss at `step`, the mean over ranks: every rank calls it. Returns its seconds. */
  const evalAt = async (step: number) => {
    const t0 = performance.now();
    const loss = await evaluate(model, evalLoader!, comm);
    const seconds = (performance.now() - t0) / 1000;
    log?.eval(step, loss, evalLoader!.steps, seconds);
    if (hellaswag) {
      const t1 = performance.now();
      const h = await hellaswag.score(model);
      log?.hellaswag(step, h.acc, h.accNorm, h.examples, (performance.now() - t1) / 1000);
    }
    return (performance.now() - t0) / 1000;
  };

  // With ranks, the last micro-step averages the gradients bucket by bucket as the backward
  // finishes them (the communicator's Worker reduces them in its shared buffer, in place).
  using gradSync = comm.worldSize > 1 ? new GradSync(model, comm) : null;
  const started = performance.now();
  // f16's loss scale as of the last readback (for the logs and checkpoints).
  let lossScale = config.precision === "f16" ? await model.readLossScale() : undefined;
  // The last loss readback, for ms per step (which leaves out evals and saves).
  let since = { step: start.step, time: started };
  const evalS = start.step === 0 && evalLoader ? await evalAt(0) : 0;
  let sizer = maxSteps === null
    ? new StepSizer(config.timeBudget ?? 0, config.warmupSteps, {
      gpu,
      comm,
      evalS,
      evalInterval: config.evalInterval,
      // One forward of a batch per sampled token, as long as an eval's batch.
      sampleS: evalLoader ? config.sampleTokens * evalS / evalLoader.steps : 0,
    })
    : null;
  for (let step = start.step + 1; step <= (maxSteps ?? Infinity); step++) {
    model.zeroGrads();
    for (let micro = 0; micro < config.gradAccum; micro++) {
      const batch = loader.next();
      model.uploadBatch(batch.inputs, batch.targets);
      if (gradSync && micro === config.gradAccum - 1) await gradSync.lastMicroStep();
      else model.step();
    }
    model.optimizerStep(step, lrOf(step), muonLrOf(step));
    const sized = await sizer?.afterStep(step - start.step);
    if (sized) {
      maxSteps = sized.steps;
      if (log) log.maxSteps = maxSteps;
      log?.say(sized.line);
      sizer = null;
    }

    // Nothing is saved before the step count is fixed: a resume would not know it.
    const checkpointDue = maxSteps !== null &&
      (step === maxSteps || every(config.checkpointInterval, step));
    const evalDue = evalLoader !== null &&
      (every(config.evalInterval, step) || step === maxSteps);
    if (every(config.logInterval, step) || evalDue || checkpointDue) {
      // The loop's one wait on the GPU: the losses and grad norms of the steps since the last.
      const stats = await model.readStepStats();
      lossScale = stats.at(-1)?.lossScale ?? lossScale; // f16: recorded with each step
      const losses = Float32Array.from(stats, (s) => s.loss);
      await comm.allReduceMean(losses);
      const now = performance.now();
      const ms = (now - since.time) / (step - since.step);
      since = { step, time: now };
      for (const [i, { gradNorm }] of stats.entries()) {
        const [at, loss] = [step - stats.length + 1 + i, losses[i]];
        // In f16 an overflowing gradient skips the step (and halves the scale): not a divergence.
        if (!Number.isFinite(loss) || (!lossScale && !Number.isFinite(gradNorm))) {
          await checkpointer.diverged(
            `step ${at}: the loss is ${loss} (grad norm ${gradNorm}); stopping.`,
          );
        }
        log?.step({
          step: at,
          loss,
          lr: lrOf(at),
          gradNorm,
          ms,
          tokensPerS: tokensPerStep / (ms / 1000),
          mfu: peak ? flopsPerStep / (ms / 1000) / (peak * 1e12) : undefined,
          etaSeconds: maxSteps === null ? undefined : (maxSteps - at) * ms / 1000,
          lossScale: at === step ? lossScale : undefined,
        });
      }
    }
    const paused = performance.now();
    if (evalDue) await evalAt(step);
    if (checkpointDue) await checkpointer.save(step);
    since.time += performance.now() - paused;
  }
  await checkpointer.flush();
  log?.close();
  const seconds = (performance.now() - started) / 1000;
  log?.say(
    `done: ${(maxSteps ?? start.step) - start.step} steps in ${formatDuration(seconds)} | ` +
      `train loss ${log.lastLoss?.toFixed(4) ?? "-"} | val loss ` +
      (log.firstValLoss === undefined
        ? "-"
        : `${log.firstValLoss.toFixed(4)} -> ${log.lastValLoss!.toFixed(4)}`) +
      ` | checkpoint ${checkpointer.lastGood ?? "-"}`,
  );

  if (log && config.sampleTokens > 0) {
    log.say(`sample (${config.sampleTokens} tokens, temperature 1.0, top-k 40):`);
    let sample = "";
    await sampleText(model, {
      prompt: "",
      tokens: config.sampleTokens,
      temperature: 1,
      topK: 40,
      rng,
      write: (text) => {
        sample += text;
        Deno.stdout.writeSync(new TextEncoder().encode(text));
      },
    });
    log.say("");
    await writeAtomic(join(config.out, "sample.txt"), sample + "\n"); // the dashboard shows it
  }
  model.destroy();
}

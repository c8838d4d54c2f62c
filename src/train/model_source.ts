/**
 * Where a run's weights come from: `--resume` (the newest loadable checkpoint in
 * `OUT/checkpoints`: weights, AdamW moments, step, data position and RNG), `--init-from` (a
 * Hugging Face dir or one of our checkpoints: weights only), or a fresh init of the `--model`
 * preset.
 *
 * Resume does not give up on one bad file: a checkpoint that fails to load (truncated, damaged,
 * weights only) is skipped, saying which and why, and the next older one is tried; the trainer's
 * first save then moves the skipped ones into `checkpoints/abandoned/`.
 */
import { join } from "node:path";
import { type GPT2Config, presetConfig } from "../model/config.ts";
import { paramLayout } from "../model/params.ts";
import { initParams } from "../model/init.ts";
import { loadWeights, modelFromCheckpoint } from "../model/weights.ts";
import { listCheckpoints, loadCheckpoint } from "../io/checkpoint.ts";
import { Rng, type RngState } from "../model/rng.ts";
import type { TrainConfig } from "./options.ts";
import { OptionError } from "./option_table.ts";

/** The state a run starts from. */
export interface RunStart {
  /** Updates already done: 0, or the step of the checkpoint resumed from. */
  step: number;
  /** The checkpoint resumed from, or null. */
  checkpoint: string | null;
  modelConfig: GPT2Config;
  /** Flat parameters in `paramLayout(modelConfig)` order. */
  params: Float32Array;
  layoutFloats: number;
  /** AdamW moments, when resuming. */
  m?: Float32Array;
  v?: Float32Array;
  /** The data loader's position (opaque here: the loader validates it), when resuming. */
  loaderState?: unknown;
  rngState?: RngState;
  /** f16's dynamic loss scale when the checkpoint was saved (absent in other precisions). */
  lossScale?: number;
  /** f16's steps skipped for overflow before the checkpoint (absent in other precisions). */
  skippedSteps?: number;
  /**
   * The step count the run saved with the checkpoint resumed from (a count fixed by
   * --time-budget is kept across resumes), when resuming.
   */
  savedMaxSteps?: number;
  /** What rank 0 prints: where the run starts from. */
  notes: string[];
  /** What rank 0 warns about: checkpoints skipped and why, settings changed since the save. */
  warnings: string[];
}

/** What the trainer saves in a checkpoint beside the weights: f16's loss-scale state. */
interface TrainerState {
  lossScale?: number;
  skippedSteps?: number;
}

/**
 * Load or initialise the starting state for `config`, with the step count to train to:
 * --max-steps, else the one a resumed run saved, else null (--time-budget fixes it).
 */
export async function loadStart(
  config: TrainConfig,
): Promise<RunStart & { maxSteps: number | null }> {
  const start = config.resume
    ? await fromNewestCheckpoint(config)
    : config.initFrom
    ? await fromWeights(config.initFrom)
    : fresh(config);
  if (config.seqLen > start.modelConfig.maxSeqLen) {
    throw new Error(
      `--seq-len ${config.seqLen} is longer than the model's context ${start.modelConfig.maxSeqLen}`,
    );
  }
  const maxSteps = config.maxSteps ?? start.savedMaxSteps ?? null;
  if (start.checkpoint && maxSteps !== null && maxSteps <= start.step) {
    const what = config.maxSteps !== null
      ? `--max-steps ${maxSteps}`
      : `the step count ${maxSteps} saved with it`;
    throw new OptionError(
      `${what} is not above the step ${start.step} of ${start.checkpoint}, ` +
        `so there is nothing left to train: give a --max-steps above ${start.step} to go on`,
    );
  }
  return { ...start, maxSteps };
}

async function fromWeights(path: string): Promise<RunStart> {
  const { config, layout, params } = await loadWeights(path);
  return {
    step: 0,
    checkpoint: null,
    modelConfig: config,
    params,
    layoutFloats: layout.totalFloats,
    notes: [`starting from the weights in ${path}`],
    warnings: [],
  };
}

function fresh(config: TrainConfig, notes: string[] = [], warnings: string[] = []): RunStart {
  const modelConfig = presetConfig(config.model);
  const layout = paramLayout(modelConfig);
  return {
    step: 0,
    checkpoint: null,
    modelConfig,
    params: initParams(layout, config.seed),
    layoutFloats: layout.totalFloats,
    notes,
    warnings,
  };
}

/** The newest checkpoint that loads, trying older ones past those that do not. */
async function fromNewestCheckpoint(config: TrainConfig): Promise<RunStart> {
  const dir = join(config.out, "checkpoints");
  const found = listCheckpoints(dir).reverse();
  if (found.length === 0) return fresh(config, [`no checkpoint in ${dir}: starting from scratch`]);
  const skipped: string[] = [];
  for (const { path } of found) {
    try {
      const start = await fromCheckpoint(path, config);
      start.warnings.unshift(...skipped);
      return start;
    } catch (e) {
      if (e instanceof OptionError) throw e; // the flags are wrong, not the file
      const reason = (e as Error).message.replace(`${path}: `, "");
      skipped.push(`warning: skipped ${path}, it does not load: ${reason}`);
    }
  }
  throw new Error(`--resume: no checkpoint in ${dir} loads:\n${skipped.join("\n")}`);
}

async function fromCheckpoint(path: string, config: TrainConfig): Promise<RunStart> {
  using ck = await loadCheckpoint(path);
  if (!ck.hasOptimizer) throw new Error(`${path}: holds no AdamW state, cannot --resume from it`);
  // Muon keeps its momentum in adam_m's slots: read with the other optimizer it would be wrong.
  const savedOptimizer = (ck.config as Partial<TrainConfig>).optimizer ?? "adamw";
  if (savedOptimizer !== config.optimizer) {
    throw new OptionError(
      `--optimizer ${config.optimizer}: ${path} was saved by --optimizer ${savedOptimizer} ` +
        `(its optimizer state is ${savedOptimizer}'s): resume with --optimizer ${savedOptimizer}`,
    );
  }
  const { config: modelConfig, layout, params } = await modelFromCheckpoint(ck);
  const m = new Float32Array(layout.totalFloats);
  const v = new Float32Array(layout.totalFloats);
  await ck.readInto(layout.tensors, { m, v });
  try {
    Rng.fromState(ck.rngState as RngState);
  } catch (e) {
    throw new Error(`${path}: rng_state: ${(e as Error).message}`);
  }
  const saved = ck.config as Partial<TrainConfig>;
  const warnings = (["batchSize", "seqLen", "gradAccum", "model"] as const)
    .filter((key) => saved[key] !== config[key])
    .map((key) =>
      `warning: resuming ${path} with ${key} ${config[key]} (it was saved with ` +
      `${saved[key]}); the data order and losses will differ from an uninterrupted run`
    );
  return {
    step: ck.step,
    checkpoint: path,
    modelConfig,
    params,
    layoutFloats: layout.totalFloats,
    m,
    v,
    loaderState: ck.loaderState,
    rngState: ck.rngState as RngState,
    savedMaxSteps: saved.maxSteps ?? undefined,
    lossScale: (ck.trainerState as TrainerState | null)?.lossScale,
    skippedSteps: (ck.trainerState as TrainerState | null)?.skippedSteps,
    notes: [`resuming from ${path} (step ${ck.step})`],
    warnings,
  };
}

/**
 * Where a run's weights come from: the latest checkpoint (`--resume`: weights, AdamW moments,
 * step, data position and RNG), `--init-from` (a Hugging Face dir or one of our checkpoints:
 * weights only), or a fresh init of the `--model` preset.
 */
import { type GPT2Config, presetConfig } from "../model/config.ts";
import { paramLayout } from "../model/params.ts";
import { initParams } from "../model/init.ts";
import { loadWeights, modelFromCheckpoint } from "../model/weights.ts";
import type { LoaderState } from "../data/loader.ts";
import { loadCheckpoint } from "../io/checkpoint.ts";
import type { RngState } from "../model/rng.ts";
import type { TrainConfig } from "./options.ts";

/** The state a run starts from. */
export interface RunStart {
  /** Optimizer steps already done. */
  step: number;
  modelConfig: GPT2Config;
  /** Flat parameters in `paramLayout(modelConfig)` order. */
  params: Float32Array;
  layoutFloats: number;
  /** AdamW moments, when resuming. */
  m?: Float32Array;
  v?: Float32Array;
  loaderState?: LoaderState;
  rngState?: RngState;
}

/** Load or initialise the starting state for `config`. */
export async function loadStart(config: TrainConfig, resumeFrom: string | null): Promise<RunStart> {
  const start = resumeFrom
    ? await fromCheckpoint(resumeFrom, config)
    : config.initFrom
    ? await fromWeights(config.initFrom)
    : fresh(config);
  if (config.seqLen > start.modelConfig.maxSeqLen) {
    throw new Error(
      `--seq-len ${config.seqLen} is longer than the model's context ${start.modelConfig.maxSeqLen}`,
    );
  }
  return start;
}

async function fromWeights(path: string): Promise<RunStart> {
  const { config, layout, params } = await loadWeights(path);
  return { step: 0, modelConfig: config, params, layoutFloats: layout.totalFloats };
}

function fresh(config: TrainConfig): RunStart {
  const modelConfig = presetConfig(config.model);
  const layout = paramLayout(modelConfig);
  return {
    step: 0,
    modelConfig,
    params: initParams(layout, config.seed),
    layoutFloats: layout.totalFloats,
  };
}

async function fromCheckpoint(path: string, config: TrainConfig): Promise<RunStart> {
  using ck = await loadCheckpoint(path);
  const saved = ck.config as Partial<TrainConfig>;
  for (const key of ["batchSize", "seqLen", "gradAccum", "model"] as const) {
    if (saved[key] !== config[key]) {
      console.warn(
        `warning: resuming ${path} with ${key} ${config[key]} (it was saved with ` +
          `${saved[key]}); the data order and losses will differ from an uninterrupted run`,
      );
    }
  }
  if (!ck.hasOptimizer) throw new Error(`${path}: holds no AdamW state, cannot --resume from it`);
  const { config: modelConfig, layout, params } = await modelFromCheckpoint(ck);
  const m = new Float32Array(layout.totalFloats);
  const v = new Float32Array(layout.totalFloats);
  await ck.readInto(layout.tensors, { m, v });
  console.log(`resuming from ${path} (step ${ck.step})`);
  return {
    step: ck.step,
    modelConfig,
    params,
    layoutFloats: layout.totalFloats,
    m,
    v,
    loaderState: ck.loaderState as LoaderState,
    rngState: ck.rngState as RngState,
  };
}

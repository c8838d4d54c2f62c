/**
 * repgpt: GPT-2 pretraining in TypeScript on Deno, with WGSL kernels on WebGPU.
 *
 * The public API: the tokenizer and data pipeline, the WebGPU device and kernels, the GPT-2
 * model with its Hugging Face and checkpoint I/O, the optimizer, multi-rank collectives, and
 * the run outputs (metrics.jsonl, TensorBoard). The commands behind `deno task train`,
 * `prepare`, `eval` and `sample` live in src/commands/ and take the same flags as the CLI.
 *
 * @example Tokenize and detokenize with GPT-2's BPE (exactly OpenAI's r50k_base)
 * ```ts
 * import assert from "node:assert/strict";
 * import { Tokenizer } from "./mod.ts";
 *
 * const tok = await Tokenizer.gpt2();
 * const ids = tok.encode("Hello world, it's GPT-2!");
 * assert.deepEqual([...ids], [15496, 995, 11, 340, 338, 402, 11571, 12, 17, 0]);
 * assert.equal(tok.decode(ids), "Hello world, it's GPT-2!");
 * assert.equal(tok.eot, 50256);
 * ```
 *
 * @module
 */

// Tokenizer and data.
export { Tokenizer } from "./src/tokenizer/tokenizer.ts";
export {
  type Batch,
  DataLoader,
  EvalLoader,
  type LoaderOptions,
  type LoaderState,
} from "./src/data/loader.ts";
export { listSplit } from "./src/data/splits.ts";
export { readHellaSwag } from "./src/data/hellaswag.ts";
export { ShardError, shardHeader, shardInfo, ShardReader } from "./src/data/shard.ts";
export { prepare } from "./src/data/prepare.ts";

// WebGPU engine.
export { type Gpu, requestGpu } from "./src/gpu/device.ts";
export { type Binding, readF32, uploadBuffer } from "./src/gpu/buffer.ts";
export { type Dispatch, Kernel, submit } from "./src/gpu/kernel.ts";

// The model and its operations (each with a CPU reference under src/model/reference/).
export { type GPT2Config, presetConfig, PRESETS } from "./src/model/config.ts";
export { type ParamLayout, paramLayout } from "./src/model/params.ts";
export { initParams } from "./src/model/init.ts";
export { GPT2, type GPT2Shape } from "./src/model/gpt2.ts";
export { loadHf, saveHf } from "./src/model/hf.ts";
export { loadWeights } from "./src/model/weights.ts";
export { loadLlmc, saveLlmc } from "./src/model/llmc.ts";
export { evaluate } from "./src/train/evaluate.ts";
export { createEmbedding } from "./src/model/embedding.ts";
export { createLayerNorm } from "./src/model/layernorm.ts";
export { createMatmul } from "./src/model/matmul.ts";
export { createAttention } from "./src/model/attention.ts";
export { createGelu } from "./src/model/gelu.ts";
export { createResidual } from "./src/model/residual.ts";
export { createClassifier } from "./src/model/classifier.ts";

// Optimizer.
export { createAdamW } from "./src/optim/adamw.ts";
export { createGradNorm } from "./src/optim/grad_norm.ts";
export { learningRate, type Schedule } from "./src/optim/schedule.ts";

// Training, sampling, checkpoints and run outputs.
export { train } from "./src/train/train.ts";
export { resolveTrainConfig, TRAIN_OPTIONS, type TrainConfig } from "./src/train/options.ts";
export { scoreHellaSwag } from "./src/train/hellaswag.ts";
export { sampleText } from "./src/train/sample.ts";
export { latestCheckpoint, loadCheckpoint, saveCheckpoint } from "./src/io/checkpoint.ts";
export { Rng } from "./src/model/rng.ts";
export { readMetrics } from "./src/log/metrics.ts";
export { readEvents, TensorBoardWriter } from "./src/log/tensorboard.ts";
export { startDashboard } from "./src/log/dashboard.ts";
export { lossChartSvg } from "./src/log/plot_svg.ts";
export { SafetensorsReader, writeSafetensors } from "./src/io/safetensors.ts";

// Multi-rank.
export { type Communicator, createCommunicator } from "./src/distributed/communicator.ts";
export { launch } from "./src/distributed/launcher.ts";

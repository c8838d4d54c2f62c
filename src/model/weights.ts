/**
 * A model's weights from any of the places a user may name: a Hugging Face GPT-2 directory, one
 * of our checkpoint files (src/io/checkpoint.ts), a directory of them, a training run's
 * `--out` directory, or an llm.c model file (./llmc.ts). Behind `--init-from` and `--from`, so train, eval and sample all load
 * through the same checks: a valid config (head count included), float tensors of the right
 * shapes (src/io/checkpoint.ts, ./hf.ts), and only finite values.
 */
import { type Checkpoint, latestCheckpoint, loadCheckpoint } from "../io/checkpoint.ts";
import { type GPT2Config, validateConfig } from "./config.ts";
import { type LoadedModel, loadHf } from "./hf.ts";
import { isLlmcModelFile, loadLlmc } from "./llmc.ts";
import { allocateParams, assertFinite, paramLayout, view } from "./params.ts";

/**
 * Load weights for `--init-from` / `--from`: a Hugging Face directory (has config.json), one of
 * our checkpoint files (src/io/checkpoint.ts), a directory of them, a training run's `--out`
 * directory (the latest checkpoint in either), or an llm.c model file (its magic tells).
 */
export async function loadWeights(path: string): Promise<LoadedModel> {
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(path);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  let file = path;
  if (stat.isDirectory) {
    if (await exists(`${path}/config.json`)) return await loadHf(path);
    const latest = latestCheckpoint(path) ?? latestCheckpoint(`${path}/checkpoints`);
    if (!latest) {
      throw new Error(
        `${path}: neither a Hugging Face dir (no config.json) nor a dir of checkpoints ` +
          "(no step_*.safetensors in it or in its checkpoints/)",
      );
    }
    file = latest;
  } else if (await isLlmcModelFile(path)) {
    const model = await loadLlmc(path);
    for (const t of model.layout.tensors) assertFinite(view(model.params, t), `${path}: ${t.name}`);
    return model;
  }
  using checkpoint = await loadCheckpoint(file);
  return await modelFromCheckpoint(checkpoint);
}

/** The model config (validated), layout and weights (all finite) an open checkpoint holds. */
export async function modelFromCheckpoint(checkpoint: Checkpoint): Promise<LoadedModel> {
  const config = checkpoint.modelConfig as GPT2Config;
  validateConfig(config, `${checkpoint.path}: model_config`);
  const layout = paramLayout(config);
  const params = allocateParams(layout, checkpoint.path);
  await checkpoint.readInto(layout.tensors, { params });
  for (const t of layout.tensors) {
    assertFinite(view(params, t), `${checkpoint.path}: tensor "params.${t.name}"`);
  }
  return { config, layout, params };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

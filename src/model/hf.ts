/**
 * Hugging Face GPT-2 weights: a directory with `config.json` and `model.safetensors`.
 *
 * HF GPT-2 stores its Linear weights as Conv1D, shaped (in, out); ours are (out, in) like
 * torch.nn.Linear, so every matrix is transposed on the way in and out. wte has V rows there
 * and Vp here (the padded rows stay zero). Names may carry a `transformer.` prefix; the
 * causal-mask buffers (`h.N.attn.bias`, `h.N.attn.masked_bias`) are skipped and a
 * `lm_head.weight`, if present, must equal wte (GPT-2 ties them).
 *
 * HF's GPT2 always has biases. A bias-free model is saved with zero biases (so transformers
 * loads it unchanged) and `"repgpt_bias": false` in config.json, which brings it back
 * bias-free here.
 *
 * Loading checks what a config alone cannot: every tensor is a float dtype (an integer tensor
 * would convert to nonsense weights silently) and holds only finite values.
 */
import { join } from "node:path";
import { type GPT2Config, makeConfig } from "./config.ts";
import {
  allocateParams,
  assertFinite,
  type ParamLayout,
  paramLayout,
  type ParamTensor,
  view,
} from "./params.ts";
import {
  FLOAT_DTYPES,
  SafetensorsReader,
  type TensorSource,
  writeSafetensors,
} from "../io/safetensors.ts";

/** HF `activation_function` values and our GELU forms. */
const ACTIVATIONS: Record<string, GPT2Config["gelu"]> = {
  gelu_new: "tanh",
  gelu_pytorch_tanh: "tanh",
  gelu: "erf",
};

/** Our config from a parsed HF `config.json` (`where` names the file in errors). */
export function configFromHf(json: unknown, where: string): GPT2Config {
  if (typeof json !== "object" || json === null) throw new Error(`${where}: not a JSON object`);
  const c = json as Record<string, unknown>;
  const int = (key: string, fallback?: string): number => {
    const value = c[key] ?? (fallback !== undefined ? c[fallback] : undefined);
    if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
      throw new Error(
        `${where}: "${key}" must be a positive integer, got ${JSON.stringify(value)}`,
      );
    }
    return value;
  };
  const activation = c.activation_function ?? "gelu_new";
  const gelu = ACTIVATIONS[activation as string];
  if (!gelu) {
    throw new Error(
      `${where}: activation_function ${JSON.stringify(activation)} is not supported ` +
        `(expected ${Object.keys(ACTIVATIONS).join(", ")})`,
    );
  }
  // HF's attribute aliases: a config.json carrying both spellings must agree.
  for (const [key, alias] of [["n_head", "num_attention_heads"], ["n_embd", "hidden_size"]]) {
    if (c[alias] !== undefined && c[key] !== undefined && c[alias] !== c[key]) {
      throw new Error(
        `${where}: "${key}" ${JSON.stringify(c[key])} and "${alias}" ` +
          `${JSON.stringify(c[alias])} disagree`,
      );
    }
  }
  const eps = c.layer_norm_epsilon ?? 1e-5;
  if (typeof eps !== "number") throw new Error(`${where}: layer_norm_epsilon must be a number`);
  try {
    return makeConfig({
      numLayers: int("n_layer"),
      numHeads: int("n_head"),
      channels: int("n_embd"),
      maxSeqLen: int("n_positions", "n_ctx"),
      vocabSize: int("vocab_size"),
      bias: c.repgpt_bias !== false,
      gelu,
      layerNormEps: eps,
    });
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
}

/** The HF `config.json` object for `config`. */
export function hfConfigJson(config: GPT2Config): Record<string, unknown> {
  return {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    n_layer: config.numLayers,
    n_head: config.numHeads,
    n_embd: config.channels,
    n_positions: config.maxSeqLen,
    n_ctx: config.maxSeqLen,
    vocab_size: config.vocabSize,
    layer_norm_epsilon: config.layerNormEps,
    activation_function: config.gelu === "tanh" ? "gelu_new" : "gelu",
    tie_word_embeddings: true,
    bos_token_id: 50256,
    eos_token_id: 50256,
    repgpt_bias: config.bias,
  };
}

/** A model loaded from a HF directory: its config, layout and flat parameters. */
export interface LoadedModel {
  config: GPT2Config;
  layout: ParamLayout;
  /** Flat parameters (`layout.totalFloats`), padded vocab rows zero. */
  params: Float32Array;
}

/** Load `dir/config.json` and `dir/model.safetensors`. Errors name the file and tensor. */
export async function loadHf(dir: string): Promise<LoadedModel> {
  const configPath = join(dir, "config.json");
  let text: string;
  try {
    text = await Deno.readTextFile(configPath);
  } catch (e) {
    throw new Error(`${configPath}: cannot read the model config: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${configPath}: invalid JSON: ${(e as Error).message}`);
  }
  const config = configFromHf(json, configPath);
  const layout = paramLayout(config);
  const params = allocateParams(layout, configPath);
  const path = join(dir, "model.safetensors");
  using reader = await SafetensorsReader.open(path);
  const prefix = reader.has("wte.weight") ? "" : "transformer.";
  const used = new Set<string>();

  // Our (out, in) matrices are HF Conv1D (in, out); embeddings and 1-D tensors match.
  const read = async (tensor: ParamTensor) => {
    const hfName = prefix + tensor.name;
    if (!reader.has(hfName)) throw new Error(`${path}: missing tensor "${hfName}"`);
    const info = floatTensor(reader, hfName);
    const isEmbedding = tensor === layout.wte || tensor === layout.wpe;
    const hfShape = tensor === layout.wte
      ? [config.vocabSize, config.channels]
      : tensor.shape.length === 2 && !isEmbedding
      ? [tensor.shape[1], tensor.shape[0]]
      : tensor.shape;
    if (info.shape.join() !== hfShape.join()) {
      throw new Error(
        `${path}: tensor "${hfName}" has shape [${info.shape}], expected [${hfShape}] for ` +
          `this config.json`,
      );
    }
    used.add(hfName);
    const dst = view(params, tensor);
    if (hfShape.length === 2 && !isEmbedding) {
      transpose(await reader.readF32(hfName), dst, hfShape[0], hfShape[1]);
    } else {
      await reader.readF32(hfName, dst.subarray(0, info.numel));
    }
    assertFinite(dst, `${path}: tensor "${hfName}"`);
  };
  for (const tensor of layout.tensors) await read(tensor);
  const { vocabSize: V, channels: C } = config;
  for (const name of reader.names()) {
    if (used.has(name) || isMaskBuffer(name)) continue;
    if (name === prefix + "lm_head.weight" || name === "lm_head.weight") {
      await checkTied(reader, name, view(params, layout.wte).subarray(0, V * C), path);
      continue;
    }
    if (!config.bias && name.endsWith(".bias")) continue; // zeros written for transformers
    throw new Error(`${path}: unexpected tensor "${name}" for a GPT-2 with this config.json`);
  }
  return { config, layout, params };
}

/** Write `dir/config.json` and `dir/model.safetensors` (F32, HF names and Conv1D shapes). */
export async function saveHf(dir: string, config: GPT2Config, params: Float32Array): Promise<void> {
  const layout = paramLayout(config);
  if (params.length < layout.totalFloats) {
    throw new Error(`saveHf: params hold ${params.length} floats, the layout needs more`);
  }
  await Deno.mkdir(dir, { recursive: true });
  const { vocabSize: V, channels: C } = config;
  const sources: TensorSource[] = [];
  for (const tensor of layout.tensors) {
    const data = view(params, tensor);
    if (tensor === layout.wte) {
      sources.push({
        name: tensor.name,
        dtype: "F32",
        shape: [V, C],
        data: data.subarray(0, V * C),
      });
    } else if (tensor.shape.length === 2 && tensor !== layout.wpe) {
      const [out, inp] = tensor.shape;
      sources.push({
        name: tensor.name,
        dtype: "F32",
        shape: [inp, out],
        data: () => transpose(data, new Float32Array(tensor.size), out, inp),
      });
    } else {
      sources.push({ name: tensor.name, dtype: "F32", shape: tensor.shape, data });
    }
  }
  if (!config.bias) {
    // transformers' GPT2 requires every bias: write zeros (see the module comment).
    const biasConfig = { ...config, bias: true };
    for (const tensor of paramLayout(biasConfig).tensors) {
      if (!tensor.name.endsWith(".bias")) continue;
      sources.push({
        name: tensor.name,
        dtype: "F32",
        shape: tensor.shape,
        data: new Float32Array(tensor.size),
      });
    }
  }
  await writeSafetensors(join(dir, "model.safetensors"), sources, { format: "pt" });
  await Deno.writeTextFile(
    join(dir, "config.json"),
    JSON.stringify(hfConfigJson(config), null, 2) + "\n",
  );
}

function isMaskBuffer(name: string): boolean {
  return /(^|\.)attn\.(bias|masked_bias)$/.test(name);
}

/** dst (cols, rows) = src (rows, cols) transposed; returns dst. */
function transpose(src: Float32Array, dst: Float32Array, rows: number, cols: number) {
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
  }
  return dst;
}

/** The header entry of `name`, which must hold floats (F32, F16 or BF16). */
function floatTensor(reader: SafetensorsReader, name: string) {
  const info = reader.info(name);
  if (!FLOAT_DTYPES.includes(info.dtype)) {
    throw new Error(
      `${reader.path}: tensor "${name}" has dtype ${info.dtype}; GPT-2 weights are floats ` +
        `(${FLOAT_DTYPES.join(", ")})`,
    );
  }
  return info;
}

async function checkTied(reader: SafetensorsReader, name: string, wte: Float32Array, path: string) {
  floatTensor(reader, name);
  const lmHead = await reader.readF32(name);
  if (lmHead.length !== wte.length || lmHead.some((x, i) => x !== wte[i])) {
    throw new Error(`${path}: "${name}" differs from wte; only tied GPT-2 models are supported`);
  }
}

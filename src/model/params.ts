/**
 * The flat parameter layout: every GPT-2 tensor is a named, shaped range of one Float32Array
 * (and of the same-sized gradient, AdamW m and v buffers).
 *
 * Offsets are aligned to 128 floats, so any tensor can be bound on its own at WebGPU's 256-byte
 * storage offset alignment both here and in a bf16 or f16 copy (2 bytes per element). Tensors with 2+ dims (wte, wpe, every weight matrix) come first as
 * one contiguous range, the 1-D ones (LayerNorm weights and biases, Linear biases) after, so
 * AdamW runs twice: weight decay on `[0, decayFloats)` and none on `[decayFloats, totalFloats)`.
 * Names follow Hugging Face GPT-2 (`h.3.attn.c_attn.weight`), but our Linear weights are
 * stored (out, in) like torch.nn.Linear, not HF's Conv1D (in, out).
 */
import type { GPT2Config } from "./config.ts";

/** Element alignment of every tensor offset (256 bytes at 2 bytes per element). */
export const PARAM_ALIGN_FLOATS = 128;

/** One named tensor in the flat buffers. */
export interface ParamTensor {
  /** HF-style name, e.g. "h.0.mlp.c_fc.weight". */
  name: string;
  /** Shape, e.g. [4C, C] for c_fc.weight (out, in). */
  shape: number[];
  /** Offset in floats into the flat buffers (a multiple of {@link PARAM_ALIGN_FLOATS}). */
  offset: number;
  /** Element count (product of `shape`). */
  size: number;
  /** Whether AdamW applies weight decay (tensors with 2+ dims). */
  decay: boolean;
}

/** The per-layer tensors of block `l`; biases are null in bias-free models. */
export interface LayerParams {
  /** ln_1 weight (C), bias (C). */
  ln1w: ParamTensor;
  ln1b: ParamTensor | null;
  /** attn.c_attn weight (3C, C), bias (3C). */
  qkvw: ParamTensor;
  qkvb: ParamTensor | null;
  /** attn.c_proj weight (C, C), bias (C). */
  attprojw: ParamTensor;
  attprojb: ParamTensor | null;
  /** ln_2 weight (C), bias (C). */
  ln2w: ParamTensor;
  ln2b: ParamTensor | null;
  /** mlp.c_fc weight (4C, C), bias (4C). */
  fcw: ParamTensor;
  fcb: ParamTensor | null;
  /** mlp.c_proj weight (C, 4C), bias (C). */
  fcprojw: ParamTensor;
  fcprojb: ParamTensor | null;
}

/** Where every tensor lives. */
export interface ParamLayout {
  config: GPT2Config;
  /** All tensors in buffer order (decayed ones first). */
  tensors: ParamTensor[];
  /** Floats in each flat buffer, including alignment padding. */
  totalFloats: number;
  /** End of the weight-decayed range `[0, decayFloats)`. */
  decayFloats: number;
  /** Real parameter count (sum of tensor sizes, padded vocab rows included like llm.c). */
  numParameters: number;
  /** wte (Vp, C): token embedding and tied lm_head. */
  wte: ParamTensor;
  /** wpe (maxT, C). */
  wpe: ParamTensor;
  layers: LayerParams[];
  /** ln_f weight (C), bias (C). */
  lnfw: ParamTensor;
  lnfb: ParamTensor | null;
  /** Tensor by name; throws naming the missing tensor. */
  get(name: string): ParamTensor;
}

/** The layout for `config`. */
export function paramLayout(config: GPT2Config): ParamLayout {
  const { numLayers: L, channels: C, paddedVocabSize: Vp, maxSeqLen: maxT, bias } = config;
  const tensors: ParamTensor[] = [];
  let offset = 0;
  const add = (name: string, shape: number[]): ParamTensor => {
    const size = shape.reduce((a, b) => a * b, 1);
    const tensor = { name, shape, offset, size, decay: shape.length >= 2 };
    tensors.push(tensor);
    offset += Math.ceil(size / PARAM_ALIGN_FLOATS) * PARAM_ALIGN_FLOATS;
    return tensor;
  };
  const maybe = (name: string, shape: number[]) => bias ? add(name, shape) : null;

  // 2-D tensors first: the weight-decayed range.
  const wte = add("wte.weight", [Vp, C]);
  const wpe = add("wpe.weight", [maxT, C]);
  const matrices = Array.from({ length: L }, (_, l) => ({
    qkvw: add(`h.${l}.attn.c_attn.weight`, [3 * C, C]),
    attprojw: add(`h.${l}.attn.c_proj.weight`, [C, C]),
    fcw: add(`h.${l}.mlp.c_fc.weight`, [4 * C, C]),
    fcprojw: add(`h.${l}.mlp.c_proj.weight`, [C, 4 * C]),
  }));
  const decayFloats = offset;
  // 1-D tensors: no weight decay.
  const layers: LayerParams[] = matrices.map((m, l) => ({
    ...m,
    ln1w: add(`h.${l}.ln_1.weight`, [C]),
    ln1b: maybe(`h.${l}.ln_1.bias`, [C]),
    qkvb: maybe(`h.${l}.attn.c_attn.bias`, [3 * C]),
    attprojb: maybe(`h.${l}.attn.c_proj.bias`, [C]),
    ln2w: add(`h.${l}.ln_2.weight`, [C]),
    ln2b: maybe(`h.${l}.ln_2.bias`, [C]),
    fcb: maybe(`h.${l}.mlp.c_fc.bias`, [4 * C]),
    fcprojb: maybe(`h.${l}.mlp.c_proj.bias`, [C]),
  }));
  const lnfw = add("ln_f.weight", [C]);
  const lnfb = maybe("ln_f.bias", [C]);

  const byName = new Map(tensors.map((t) => [t.name, t]));
  return {
    config,
    tensors,
    totalFloats: offset,
    decayFloats,
    numParameters: tensors.reduce((n, t) => n + t.size, 0),
    wte,
    wpe,
    layers,
    lnfw,
    lnfb,
    get(name: string) {
      const tensor = byName.get(name);
      if (!tensor) throw new Error(`no parameter tensor named "${name}" in this model`);
      return tensor;
    },
  };
}

/** The view of `tensor` in a flat buffer (params, grads, m or v). */
export function view(flat: Float32Array, tensor: ParamTensor): Float32Array {
  return flat.subarray(tensor.offset, tensor.offset + tensor.size);
}

/**
 * A zeroed flat buffer for `layout`; an allocation failure (not enough memory) is an error
 * naming `where` (the file the config came from) and the size.
 */
export function allocateParams(layout: ParamLayout, where: string): Float32Array {
  try {
    return new Float32Array(layout.totalFloats);
  } catch (e) {
    throw new Error(
      `${where}: cannot allocate ${layout.totalFloats * 4} bytes for the model's ` +
        `${layout.numParameters} parameters: ${(e as Error).message}`,
    );
  }
}

/**
 * Throws when `values` holds a NaN or an infinity, naming `where` (the file and tensor), how
 * many there are and the first one: weights that are not finite are corrupt or diverged.
 */
export function assertFinite(values: Float32Array, where: string): void {
  let first = -1, count = 0;
  for (let i = 0; i < values.length; i++) {
    if (Number.isFinite(values[i])) continue;
    if (first < 0) first = i;
    count++;
  }
  if (count > 0) {
    throw new Error(
      `${where} holds ${count} non-finite value${count > 1 ? "s" : ""} (the first, at ` +
        `element ${first}, is ${values[first]}): the weights are corrupt or diverged`,
    );
  }
}

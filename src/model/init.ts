/**
 * GPT-2 weight initialisation (nanoGPT / the seed recipe), deterministic from a seed.
 *
 * Every matrix and both embeddings N(0, 0.02); the residual projections (attn.c_proj and
 * mlp.c_proj, which add into the residual stream) N(0, 0.02 / sqrt(2 * L)) so the stream's
 * variance does not grow with depth; biases 0; LayerNorm weights 1. wte's padded rows
 * (V..Vp-1) start at zero: no target ever selects them, so their only gradient is the tiny
 * softmax mass the model puts on them, and weight decay pulls them back.
 * Tensors are drawn in layout order from one generator.
 */
import { Rng } from "./rng.ts";
import { type ParamLayout, view } from "./params.ts";

/** Standard deviation of every weight matrix and embedding. */
export const INIT_STD = 0.02;

/** Fill a new flat parameter array for `layout`, reproducibly from `seed`. */
export function initParams(layout: ParamLayout, seed: number): Float32Array {
  const params = new Float32Array(layout.totalFloats);
  const rng = new Rng(seed);
  const residualStd = INIT_STD / Math.sqrt(2 * layout.config.numLayers);
  const { vocabSize: V, channels: C } = layout.config;
  for (const tensor of layout.tensors) {
    const data = view(params, tensor);
    if (tensor === layout.wte) {
      rng.fillNormal(data.subarray(0, V * C), INIT_STD);
    } else if (tensor.decay) {
      const isResidualProjection = tensor.name.endsWith(".c_proj.weight");
      rng.fillNormal(data, isResidualProjection ? residualStd : INIT_STD);
    } else if (tensor.name.endsWith(".weight")) {
      data.fill(1); // LayerNorm gain
    } // biases stay 0
  }
  return params;
}

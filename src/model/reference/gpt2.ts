/**
 * Whole-model CPU reference: GPT-2 forward (mean loss) and backward (flat gradients) on the
 * flat parameter layout, composed from the per-op references in llm.c's gpt2_forward /
 * gpt2_backward order. Readable over fast: for parity tests at tiny sizes.
 */
import type { GPT2Config } from "../config.ts";
import { type ParamLayout, paramLayout, type ParamTensor, view } from "../params.ts";
import { attentionBackward, attentionForward } from "./attention.ts";
import { classifierBackward, classifierForward } from "./classifier.ts";
import { embeddingBackward, embeddingForward } from "./embedding.ts";
import { geluBackward, geluForward } from "./gelu.ts";
import { layernormBackward, layernormForward } from "./layernorm.ts";
import { matmulBackward, matmulForward } from "./matmul.ts";
import { residualForward } from "./residual.ts";

/** Activations of one layer kept for the backward; (B,T,C) unless noted. */
interface LayerActs {
  residual: Float32Array; // the layer's input stream
  ln1: Float32Array;
  ln1Mean: Float32Array; // (B,T)
  ln1Rstd: Float32Array;
  qkv: Float32Array; // (B,T,3C)
  atty: Float32Array;
  lse: Float32Array; // (B,NH,T)
  attproj: Float32Array;
  residual2: Float32Array;
  ln2: Float32Array;
  ln2Mean: Float32Array;
  ln2Rstd: Float32Array;
  fch: Float32Array; // (B,T,4C)
  fchGelu: Float32Array;
  fcproj: Float32Array;
  residual3: Float32Array;
}

/**
 * Mean cross-entropy loss of `targets` given `inputs` (B,T), and, when `grads` is given, its
 * gradient accumulated (+=) into `grads` (same flat layout as `params`).
 */
export function gpt2ForwardBackward(
  config: GPT2Config,
  params: Float32Array,
  grads: Float32Array | null,
  inputs: Uint32Array,
  targets: Uint32Array,
  B: number,
  T: number,
): number {
  const layout: ParamLayout = paramLayout(config);
  const { numLayers: L, numHeads: NH, channels: C, vocabSize: V, paddedVocabSize: Vp } = config;
  const N = B * T;
  const p = (t: ParamTensor) => view(params, t);
  const pb = (t: ParamTensor | null) => t && p(t);
  const f32 = (n: number) => new Float32Array(n);

  // ---- forward
  const encoded = f32(N * C);
  embeddingForward(encoded, inputs, p(layout.wte), p(layout.wpe), B, T, C);
  const acts: LayerActs[] = [];
  let residual: Float32Array = encoded;
  for (let l = 0; l < L; l++) {
    const w = layout.layers[l];
    const a: LayerActs = {
      residual,
      ln1: f32(N * C),
      ln1Mean: f32(N),
      ln1Rstd: f32(N),
      qkv: f32(N * 3 * C),
      atty: f32(N * C),
      lse: f32(B * NH * T),
      attproj: f32(N * C),
      residual2: f32(N * C),
      ln2: f32(N * C),
      ln2Mean: f32(N),
      ln2Rstd: f32(N),
      fch: f32(N * 4 * C),
      fchGelu: f32(N * 4 * C),
      fcproj: f32(N * C),
      residual3: f32(N * C),
    };
    layernormForward(a.ln1, a.ln1Mean, a.ln1Rstd, residual, p(w.ln1w), pb(w.ln1b), N, C);
    matmulForward(a.qkv, a.ln1, p(w.qkvw), pb(w.qkvb), N, C, 3 * C);
    attentionForward(a.atty, a.lse, a.qkv, B, T, C, NH);
    matmulForward(a.attproj, a.atty, p(w.attprojw), pb(w.attprojb), N, C, C);
    residualForward(a.residual2, residual, a.attproj, N * C);
    layernormForward(a.ln2, a.ln2Mean, a.ln2Rstd, a.residual2, p(w.ln2w), pb(w.ln2b), N, C);
    matmulForward(a.fch, a.ln2, p(w.fcw), pb(w.fcb), N, C, 4 * C);
    geluForward(a.fchGelu, a.fch, N * 4 * C, config.gelu);
    matmulForward(a.fcproj, a.fchGelu, p(w.fcprojw), pb(w.fcprojb), N, 4 * C, C);
    residualForward(a.residual3, a.residual2, a.fcproj, N * C);
    acts.push(a);
    residual = a.residual3;
  }
  const lnf = f32(N * C), lnfMean = f32(N), lnfRstd = f32(N);
  layernormForward(lnf, lnfMean, lnfRstd, residual, p(layout.lnfw), pb(layout.lnfb), N, C);
  const losses = f32(N), probs = f32(N * Vp);
  classifierForward(losses, probs, lnf, p(layout.wte), targets, N, C, V, Vp);
  const loss = losses.reduce((sum, x) => sum + x, 0) / N;
  if (!grads) return loss;

  // ---- backward: dresidual is d loss / d (the residual stream at the current depth).
  const g = (t: ParamTensor) => view(grads, t);
  const gb = (t: ParamTensor | null) => t && g(t);
  const dresidual = f32(N * C), dln = f32(N * C), datty = f32(N * C);
  const dqkv = f32(N * 3 * C), dfch = f32(N * 4 * C), dfchGelu = f32(N * 4 * C);
  classifierBackward(dln, g(layout.wte), probs, lnf, p(layout.wte), targets, 1 / N, N, C, Vp);
  layernormBackward(
    dresidual,
    g(layout.lnfw),
    gb(layout.lnfb),
    dln,
    residual,
    p(layout.lnfw),
    lnfMean,
    lnfRstd,
    N,
    C,
  );
  for (let l = L - 1; l >= 0; l--) {
    const w = layout.layers[l], a = acts[l];
    // residual3 = residual2 + fcproj: d fcproj = dresidual, which also flows on to residual2.
    matmulBackward(
      dfchGelu,
      g(w.fcprojw),
      gb(w.fcprojb),
      dresidual,
      a.fchGelu,
      p(w.fcprojw),
      N,
      4 * C,
      C,
    );
    geluBackward(dfch, a.fch, dfchGelu, N * 4 * C, config.gelu);
    matmulBackward(dln, g(w.fcw), gb(w.fcb), dfch, a.ln2, p(w.fcw), N, C, 4 * C);
    layernormBackward(
      dresidual,
      g(w.ln2w),
      gb(w.ln2b),
      dln,
      a.residual2,
      p(w.ln2w),
      a.ln2Mean,
      a.ln2Rstd,
      N,
      C,
    );
    // residual2 = residual + attproj: d attproj = dresidual, which also flows on to residual.
    matmulBackward(datty, g(w.attprojw), gb(w.attprojb), dresidual, a.atty, p(w.attprojw), N, C, C);
    attentionBackward(dqkv, datty, a.qkv, B, T, C, NH);
    matmulBackward(dln, g(w.qkvw), gb(w.qkvb), dqkv, a.ln1, p(w.qkvw), N, C, 3 * C);
    layernormBackward(
      dresidual,
      g(w.ln1w),
      gb(w.ln1b),
      dln,
      a.residual,
      p(w.ln1w),
      a.ln1Mean,
      a.ln1Rstd,
      N,
      C,
    );
  }
  embeddingBackward(g(layout.wte), g(layout.wpe), dresidual, inputs, B, T, C);
  return loss;
}

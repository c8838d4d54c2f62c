/**
 * GPT-2's dispatch graph: the activation arena for (B, T) and the forward, classifier and
 * backward dispatch lists, in llm.c's gpt2_forward / gpt2_backward order. Private to gpt2.ts,
 * which owns the buffers and replays the lists.
 *
 * Activations, their gradients and the weights the kernels read are stored as the model's
 * storage type (bf16: the working copy AdamW writes); LayerNorm statistics, attention's lse and
 * delta, the losses, the logits scratch and the parameter gradients are f32 in every type, and
 * so is an f16 model's residual stream ({@link residualStreamType}).
 */
import type { Gpu } from "../gpu/device.ts";
import { subRange } from "../gpu/buffer.ts";
import type { Dispatch } from "../gpu/kernel.ts";
import { elementBytes, storageBytes, type StorageType } from "../gpu/storage.ts";
import type { GPT2Config } from "./config.ts";
import type { ParamLayout, ParamTensor } from "./params.ts";
import { createEmbedding, type EmbeddingOp } from "./embedding.ts";
import { createLayerNorm, type LayerNormOp } from "./layernorm.ts";
import { createMatmul, type MatmulOp } from "./matmul.ts";
import { type AttentionOp, createAttention } from "./attention.ts";
import { createGelu, type GeluOp } from "./gelu.ts";
import { createResidual, type ResidualOp } from "./residual.ts";
import { type ClassifierOp, classifierScratchBytes, createClassifier } from "./classifier.ts";
import { type AdamWOp, createAdamW } from "../optim/adamw.ts";
import { createGradNorm, type GradNormOp } from "../optim/grad_norm.ts";

/** The compiled operations one model uses. */
export interface Gpt2Ops {
  adamw: AdamWOp;
  gradNorm: GradNormOp;
  embedding: EmbeddingOp;
  layernorm: LayerNormOp;
  matmul: MatmulOp;
  attention: AttentionOp;
  gelu: GeluOp;
  residual: ResidualOp;
  classifier: ClassifierOp;
}

/**
 * Storage of the residual stream (the embedding output and each block's two sums) of a model
 * stored as `type`: f32 for f16, whose 11 bits would lose the small updates each block adds
 * to a stream that grows through the layers (the seed's f16 recipe keeps it f32); bf16 keeps
 * it in bf16 as llm.c does.
 */
export function residualStreamType(type: StorageType): StorageType {
  return type === "f16" ? "f32" : type;
}

/** Compile every operation a model of `config` stored as `type` uses. */
export async function createGpt2Ops(
  gpu: Gpu,
  config: GPT2Config,
  type: StorageType,
): Promise<Gpt2Ops> {
  const stream = residualStreamType(type);
  const [adamw, gradNorm, embedding, layernorm, matmul, attention, gelu, residual, classifier] =
    await Promise.all([
      createAdamW(gpu, { copyType: type === "f32" ? undefined : type }),
      createGradNorm(gpu),
      createEmbedding(gpu, { type, outType: stream }),
      createLayerNorm(gpu, { type, inputType: stream }),
      createMatmul(gpu, { type }),
      createAttention(gpu, config.channels / config.numHeads, { type }),
      createGelu(gpu, config.gelu, type),
      createResidual(gpu, type, stream),
      createClassifier(gpu, { type }),
    ]);
  return { adamw, gradNorm, embedding, layernorm, matmul, attention, gelu, residual, classifier };
}

/** Free the ops' own buffers. */
export function destroyGpt2Ops(ops: Gpt2Ops): void {
  ops.gradNorm.destroy();
  ops.layernorm.destroy();
  ops.matmul.destroy();
  ops.classifier.destroy();
}

/** A LayerNorm's output (B,T,C) and the mean and rstd (B,T) its backward needs. */
interface NormActs {
  out: GPUBuffer;
  mean: GPUBuffer;
  rstd: GPUBuffer;
}

/**
 * Per-layer activations kept for the backward (llm.c's ActivationTensors), one buffer per
 * tensor per layer: (B,T,C) unless noted. N = B*T.
 */
interface LayerActs {
  ln1: NormActs;
  qkv: GPUBuffer; // (B,T,3C)
  atty: GPUBuffer;
  lse: GPUBuffer; // (B,NH,T) attention row logsumexp
  attproj: GPUBuffer;
  residual2: GPUBuffer;
  ln2: NormActs;
  fch: GPUBuffer; // (B,T,4C) before GELU
  fchGelu: GPUBuffer; // (B,T,4C)
  fcproj: GPUBuffer;
  residual3: GPUBuffer;
}

/** What the graph is built on: the model's buffers and an allocator it owns. */
export interface GraphInputs {
  gpu: Gpu;
  ops: Gpt2Ops;
  layout: ParamLayout;
  B: number;
  T: number;
  gradAccumSteps: number;
  /** Storage of activations, their gradients and `weights`. */
  type: StorageType;
  /** A new buffer of `bytes` bytes, destroyed with the model. */
  alloc(bytes: number, label: string): GPUBuffer;
  /** The flat weights the kernels read (`layout.totalFloats` elements of `type`). */
  weights: GPUBuffer;
  /** Flat f32 gradients (`layout.totalFloats`). */
  grads: GPUBuffer;
  /** (B,T) u32 token ids, and the inputs' token index for the dwte backward. */
  inputs: GPUBuffer;
  targets: GPUBuffer;
  tokenIndex: GPUBuffer;
  /** gradAccumSteps + 1 floats: each micro-step's mean loss, then the eval loss. */
  lossSlots: GPUBuffer;
  /** The dynamic loss scale state (f16; see grad_norm.ts), or null for none. */
  lossScale: GPUBuffer | null;
}

/** The recorded dispatch lists. */
export interface Gpt2Graph {
  /** Embedding, L blocks, ln_f: the forward up to the classifier. */
  forward: Dispatch[];
  /** forward, classifier with dlnf and dwte, backward. */
  train: Dispatch[];
  /**
   * `train` cut where parameter gradients become final: after ln_f's backward, after each
   * block's (last block first), after the embedding's (wte, which the classifier also adds to).
   */
  trainSegments: TrainSegment[];
  /** forward, classifier losses. */
  eval: Dispatch[];
  /** meanLoss[k] writes the mean of the per-token losses to slot k. */
  meanLoss: Dispatch[];
  /** logits (B, Vp) of lastX (B, C), for sampling. */
  logits: Dispatch[];
  /** (B,T) per-token cross-entropy of the last step or evalStep. */
  tokenLosses: GPUBuffer;
  /** ln_f's output (B,T,C), the sampled rows of it (B,C), and their logits (B,Vp). */
  lnf: GPUBuffer;
  lastX: GPUBuffer;
  lastLogits: GPUBuffer;
  /** Activation gradients that accumulate (+=): clear before every micro-step. */
  clearEachStep: GPUBuffer[];
  /** Every dispatch, for destroy(). */
  all: Dispatch[];
}

/** A run of `train`'s dispatches and the parameters whose gradients are final after it. */
export interface TrainSegment {
  /** "head" (up to ln_f's backward), "block N" or "embedding". */
  label: string;
  dispatches: Dispatch[];
  finishes: ParamTensor[];
}

/** Allocate the activation arena and record the dispatch lists. */
export function recordGpt2Graph(o: GraphInputs): Gpt2Graph {
  const { gpu, ops, layout: lay, B, T, gradAccumSteps, type } = o;
  const config = lay.config;
  const { numLayers: L, channels: C, numHeads: NH, vocabSize: V, paddedVocabSize: Vp } = config;
  const N = B * T;
  /** A tensor of `n` elements of the storage type; `f32` for statistics and scratch. */
  const alloc = (n: number, label: string) => o.alloc(storageBytes(type, n), label);
  const f32 = (n: number, label: string) => o.alloc(n * 4, label);
  const stream = residualStreamType(type);
  /** A tensor of the residual stream. */
  const allocStream = (n: number, label: string) => o.alloc(storageBytes(stream, n), label);
  const e = elementBytes(type);
  const p = (t: ParamTensor) => subRange(o.weights, t.offset * e, storageBytes(type, t.size));
  const g = (t: ParamTensor) => subRange(o.grads, t.offset * 4, t.size * 4);
  const pb = (t: ParamTensor | null) => t && p(t);
  const gb = (t: ParamTensor | null) => t && g(t);

  const normActs = (name: string): NormActs => ({
    out: alloc(N * C, name),
    mean: f32(N, `${name}_mean`),
    rstd: f32(N, `${name}_rstd`),
  });
  const encoded = allocStream(N * C, "encoded");
  const acts: LayerActs[] = Array.from({ length: L }, (_, l) => ({
    ln1: normActs(`ln1[${l}]`),
    qkv: alloc(N * 3 * C, `qkv[${l}]`),
    atty: alloc(N * C, `atty[${l}]`),
    lse: f32(B * NH * T, `att_lse[${l}]`),
    attproj: alloc(N * C, `attproj[${l}]`),
    residual2: allocStream(N * C, `residual2[${l}]`),
    ln2: normActs(`ln2[${l}]`),
    fch: alloc(N * 4 * C, `fch[${l}]`),
    fchGelu: alloc(N * 4 * C, `fch_gelu[${l}]`),
    fcproj: alloc(N * C, `fcproj[${l}]`),
    residual3: allocStream(N * C, `residual3[${l}]`),
  }));
  const lnf = normActs("lnf");
  // Backward scratch, reused by every layer.
  const dresidual = alloc(N * C, "dresidual"); // d loss / d residual stream, +=
  const dln = alloc(N * C, "dln"); // d of a LayerNorm output (ln1, ln2, lnf)
  const datty = alloc(N * C, "datty");
  const dqkv = alloc(N * 3 * C, "dqkv");
  const dfch = alloc(N * 4 * C, "dfch"); // d fch_gelu, then d fch in place
  const delta = f32(B * NH * T, "att_delta");
  const losses = f32(N, "losses"); // (B,T) per-token loss
  const scratch = f32(classifierScratchBytes(gpu, N, Vp) / 4, "logits scratch");
  const shape = { N, C, V, Vp };
  const clsForward = { losses, x: lnf.out, wte: p(lay.wte), targets: o.targets, scratch };
  const clsTrain = ops.classifier.forwardBackward(
    { ...clsForward, dx: dln, dwte: g(lay.wte), lossScale: o.lossScale ?? undefined },
    { ...shape, dloss: 1 / (N * gradAccumSteps) },
  );
  const clsEval = ops.classifier.forward(clsForward, shape);
  const meanLoss = Array.from(
    { length: gradAccumSteps + 1 },
    (_, k) => ops.classifier.meanLoss({ out: subRange(o.lossSlots, k * 4, 4), losses }, { N }),
  );
  const lastX = alloc(B * C, "sampled rows of lnf");
  const lastLogits = f32(B * Vp, "sampled logits");
  const logits = ops.classifier.logits(
    { logits: lastLogits, x: lastX, wte: p(lay.wte) },
    { row0: 0, rows: B, C, V, Vp },
  );

  // llm.c-style calls, each op with one layer's tensors. A Linear weight is (OC, inC).
  const layernorm = (x: NormActs, inp: GPUBuffer, w: ParamTensor, b: ParamTensor | null) =>
    ops.layernorm.forward({ ...x, inp, weight: p(w), bias: pb(b) }, { N, C });
  const layernormBackward = (
    dinp: GPUBuffer,
    dout: GPUBuffer,
    x: NormActs,
    inp: GPUBuffer,
    w: ParamTensor,
    b: ParamTensor | null,
  ) =>
    ops.layernorm.backward(
      { dinp, dweight: g(w), dbias: gb(b), dout, inp, weight: p(w), mean: x.mean, rstd: x.rstd },
      { N, C },
    );
  const linear = (out: GPUBuffer, inp: GPUBuffer, w: ParamTensor, b: ParamTensor | null) =>
    ops.matmul.forward(
      { out, inp, weight: p(w), bias: pb(b) },
      { N, C: w.shape[1], OC: w.shape[0] },
    );
  const linearBackward = (
    dinp: GPUBuffer,
    dout: GPUBuffer,
    inp: GPUBuffer,
    w: ParamTensor,
    b: ParamTensor | null,
  ) =>
    ops.matmul.backward(
      { dinp, dweight: g(w), dbias: gb(b), dout, inp, weight: p(w) },
      { N, C: w.shape[1], OC: w.shape[0] },
    );

  // ---- forward
  const forward: Dispatch[] = [];
  forward.push(...ops.embedding.forward(
    { out: encoded, tokens: o.inputs, wte: p(lay.wte), wpe: p(lay.wpe) },
    { B, T, C, V: config.paddedVocabSize },
  ));
  for (let l = 0; l < L; l++) {
    const w = lay.layers[l], a = acts[l];
    const residual = l === 0 ? encoded : acts[l - 1].residual3;
    forward.push(
      ...layernorm(a.ln1, residual, w.ln1w, w.ln1b),
      ...linear(a.qkv, a.ln1.out, w.qkvw, w.qkvb),
      ...ops.attention.forward({ out: a.atty, lse: a.lse, qkv: a.qkv }, { B, T, C, NH }),
      ...linear(a.attproj, a.atty, w.attprojw, w.attprojb),
      ...ops.residual.forward({ out: a.residual2, a: residual, b: a.attproj }, { n: N * C }),
      ...layernorm(a.ln2, a.residual2, w.ln2w, w.ln2b),
      ...linear(a.fch, a.ln2.out, w.fcw, w.fcb),
      ...ops.gelu.forward({ out: a.fchGelu, inp: a.fch }, { n: N * 4 * C }),
      ...linear(a.fcproj, a.fchGelu, w.fcprojw, w.fcprojb),
      ...ops.residual.forward({ out: a.residual3, a: a.residual2, b: a.fcproj }, { n: N * C }),
    );
  }
  const last = acts[L - 1].residual3;
  forward.push(...layernorm(lnf, last, lay.lnfw, lay.lnfb));

  // ---- backward: dresidual is d loss / d residual3[l], then (after ln2's +=) d residual2[l],
  // then (after ln1's +=) d residual3[l-1].
  const present = (tensors: (ParamTensor | null)[]) => tensors.filter((t) => t !== null);
  const segments: TrainSegment[] = [{
    label: "head",
    dispatches: [
      ...forward,
      ...clsTrain,
      ...layernormBackward(dresidual, dln, lnf, last, lay.lnfw, lay.lnfb),
    ],
    finishes: present([lay.lnfw, lay.lnfb]),
  }];
  for (let l = L - 1; l >= 0; l--) {
    const w = lay.layers[l], a = acts[l];
    const residual = l === 0 ? encoded : acts[l - 1].residual3;
    segments.push({
      label: `block ${l}`,
      dispatches: [
        ...linearBackward(dfch, dresidual, a.fchGelu, w.fcprojw, w.fcprojb),
        ...ops.gelu.backward({ dinp: dfch, inp: a.fch, dout: dfch }, { n: N * 4 * C }),
        ...linearBackward(dln, dfch, a.ln2.out, w.fcw, w.fcb),
        ...layernormBackward(dresidual, dln, a.ln2, a.residual2, w.ln2w, w.ln2b),
        ...linearBackward(datty, dresidual, a.atty, w.attprojw, w.attprojb),
        ...ops.attention.backward(
          { dqkv, delta, dout: datty, qkv: a.qkv, out: a.atty, lse: a.lse },
          { B, T, C, NH },
        ),
        ...linearBackward(dln, dqkv, a.ln1.out, w.qkvw, w.qkvb),
        ...layernormBackward(dresidual, dln, a.ln1, residual, w.ln1w, w.ln1b),
      ],
      finishes: present(Object.values(w)),
    });
  }
  segments.push({
    label: "embedding",
    dispatches: ops.embedding.backward(
      {
        dwte: g(lay.wte),
        dwpe: g(lay.wpe),
        dout: dresidual,
        tokens: o.inputs,
        index: o.tokenIndex,
      },
      { B, T, C, V: config.paddedVocabSize },
    ),
    finishes: [lay.wte, lay.wpe],
  });
  const train = segments.flatMap((s) => s.dispatches);

  return {
    forward,
    train,
    trainSegments: segments,
    eval: [...forward, ...clsEval],
    meanLoss,
    logits,
    tokenLosses: losses,
    lnf: lnf.out,
    lastX,
    lastLogits,
    clearEachStep: [dresidual],
    all: [...train, ...clsEval, ...meanLoss, ...logits],
  };
}

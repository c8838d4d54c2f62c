/**
 * GPT-2 on the GPU: flat parameter, gradient and AdamW buffers, an activation arena sized once
 * for (B, T), and fixed lists of prepared dispatches recorded once and replayed every step.
 *
 *   step()       one micro-step: forward, fused classifier (loss, dlogits, dwte), backward;
 *                parameter gradients accumulate (+=) until zeroGrads().
 *   evalStep()   forward and per-token losses only.
 *   logits...    forward and the logits of one position, for sampling.
 *
 * Each call encodes one command buffer and submits it without waiting; only the read*()
 * methods wait for the GPU. Structure and names follow llm.c's gpt2_forward / gpt2_backward.
 */
import type { Gpu } from "../gpu/device.ts";
import { type Binding, createBuffer, readF32, subRange, writeBuffer } from "../gpu/buffer.ts";
import type { Dispatch } from "../gpu/kernel.ts";
import type { GPT2Config } from "./config.ts";
import { type ParamLayout, paramLayout, type ParamTensor } from "./params.ts";
import {
  buildTokenIndex,
  createEmbedding,
  type EmbeddingOp,
  tokenIndexLength,
} from "./embedding.ts";
import { createLayerNorm, type LayerNormOp } from "./layernorm.ts";
import { createMatmul, type MatmulOp } from "./matmul.ts";
import { type AttentionOp, createAttention } from "./attention.ts";
import { createGelu, type GeluOp } from "./gelu.ts";
import { createResidual, type ResidualOp } from "./residual.ts";
import { type ClassifierOp, classifierScratchBytes, createClassifier } from "./classifier.ts";
import { type AdamWConfig, type AdamWOp, type AdamWStep, createAdamW } from "../optim/adamw.ts";
import { createGradNorm, type GradNormOp } from "../optim/grad_norm.ts";

/** Batch geometry the model is built for. */
export interface GPT2Shape {
  /** Sequences per micro-batch. */
  B: number;
  /** Tokens per sequence (at most config.maxSeqLen). */
  T: number;
  /**
   * Micro-steps per optimizer step (default 1): the loss gradient is scaled by
   * 1 / (B*T*gradAccumSteps), so the accumulated gradient is that of the mean loss.
   */
  gradAccumSteps?: number;
}

/** The four flat buffers with the same layout. */
export type FlatName = "params" | "grads" | "m" | "v";

/**
 * Per-layer activations kept for the backward (llm.c's ActivationTensors), one buffer per
 * tensor per layer: (B,T,C) unless noted. N = B*T.
 */
interface LayerActs {
  ln1: GPUBuffer;
  ln1Mean: GPUBuffer; // (B,T)
  ln1Rstd: GPUBuffer; // (B,T)
  qkv: GPUBuffer; // (B,T,3C)
  atty: GPUBuffer;
  lse: GPUBuffer; // (B,NH,T) attention row logsumexp
  attproj: GPUBuffer;
  residual2: GPUBuffer;
  ln2: GPUBuffer;
  ln2Mean: GPUBuffer;
  ln2Rstd: GPUBuffer;
  fch: GPUBuffer; // (B,T,4C) before GELU
  fchGelu: GPUBuffer; // (B,T,4C)
  fcproj: GPUBuffer;
  residual3: GPUBuffer;
}

/** AdamW hyperparameters fixed for a run, and the global gradient-norm clip (0 = off). */
export interface OptimizerConfig extends AdamWConfig {
  gradClip: number;
}

/** The compiled operations one model uses. */
interface Ops {
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

async function createOps(gpu: Gpu, config: GPT2Config): Promise<Ops> {
  const [adamw, gradNorm, embedding, layernorm, matmul, attention, gelu, residual, classifier] =
    await Promise.all([
      createAdamW(gpu),
      createGradNorm(gpu),
      createEmbedding(gpu),
      createLayerNorm(gpu),
      createMatmul(gpu),
      createAttention(gpu, config.channels / config.numHeads),
      createGelu(gpu, config.gelu),
      createResidual(gpu),
      createClassifier(gpu),
    ]);
  return { adamw, gradNorm, embedding, layernorm, matmul, attention, gelu, residual, classifier };
}

/** A GPT-2 built for one (B, T) on one device. */
export class GPT2 {
  readonly layout: ParamLayout;
  /** Flat buffers of `layout.totalFloats` floats each. */
  readonly params: GPUBuffer;
  readonly grads: GPUBuffer;
  readonly m: GPUBuffer;
  readonly v: GPUBuffer;
  /** Token ids (B,T) u32, uploaded by uploadBatch. */
  readonly inputs: GPUBuffer;
  readonly targets: GPUBuffer;
  /** The inputs grouped by token, for the deterministic dwte backward (see embedding.ts). */
  readonly tokenIndex: GPUBuffer;
  #buffers: GPUBuffer[] = [];
  #dispatches: Dispatch[] = [];
  #ops!: Ops;
  #train: Dispatch[] = [];
  #eval: Dispatch[] = [];
  #zeroPending = false;
  /** Activation gradients that ops accumulate into; cleared at the start of every step. */
  #clearEachStep: GPUBuffer[] = [];
  /** Mean loss of each micro-step of the current accumulation, then the last eval's. */
  #lossSlots: GPUBuffer;
  /** The mean-loss dispatch writing each slot (gradAccumSteps + 1). */
  #meanLoss: Dispatch[] = [];
  /** Micro-steps since zeroGrads(). */
  #micro = 0;
  /** Whether the last loss computed was an evalStep's. */
  #lastWasEval = false;
  /** Sampling: the chosen rows of lnf (B, C), their logits (B, Vp), and the logits dispatches. */
  #lastX!: GPUBuffer;
  #lastLogits!: GPUBuffer;
  #logitsDispatches: Dispatch[] = [];
  #forward: Dispatch[] = [];
  #lnf!: GPUBuffer;
  /** grad_norm's result: [global L2 norm, clip scale]. */
  #normScale: GPUBuffer;
  #optimizer: { dispatches: Dispatch[]; adamw: AdamWStep } | null = null;

  private constructor(
    readonly gpu: Gpu,
    readonly config: GPT2Config,
    readonly B: number,
    readonly T: number,
    readonly gradAccumSteps: number,
  ) {
    this.layout = paramLayout(config);
    const bytes = this.layout.totalFloats * 4;
    this.params = this.#alloc(bytes / 4, "params");
    this.grads = this.#alloc(bytes / 4, "grads");
    this.m = this.#alloc(bytes / 4, "adamw m");
    this.v = this.#alloc(bytes / 4, "adamw v");
    this.inputs = this.#alloc(B * T, "inputs");
    this.targets = this.#alloc(B * T, "targets");
    this.tokenIndex = this.#alloc(tokenIndexLength(B * T), "token index");
    this.#normScale = this.#alloc(2, "grad norm and clip scale");
    this.#lossSlots = this.#alloc(gradAccumSteps + 1, "mean loss per micro-step, eval loss");
  }

  /** Allocate the buffers and record the dispatch lists for `config` at (B, T). */
  static async create(
    gpu: Gpu,
    config: GPT2Config,
    { B, T, gradAccumSteps = 1 }: GPT2Shape,
  ): Promise<GPT2> {
    if (!Number.isInteger(B) || B < 1) throw new RangeError(`model: B must be >= 1, got ${B}`);
    if (!Number.isInteger(gradAccumSteps) || gradAccumSteps < 1) {
      throw new RangeError(`model: gradAccumSteps must be >= 1, got ${gradAccumSteps}`);
    }
    // GELU, LayerNorm and the residual adds bind whole activations; matmul, attention and the
    // classifier split theirs. The largest unsplit one is the MLP's (B,T,4C).
    const mlpBytes = B * T * 4 * config.channels * 4;
    if (mlpBytes > gpu.maxBinding) {
      throw new RangeError(
        `model: B*T = ${B}*${T} makes the MLP activation (B,T,4C) ${mlpBytes} bytes, over this ` +
          `device's ${gpu.maxBinding}-byte binding limit; use a smaller --batch-size or --seq-len`,
      );
    }
    if (config.layerNormEps !== 1e-5) {
      throw new Error(
        `model: the LayerNorm kernels use eps 1e-5, config has ${config.layerNormEps}`,
      );
    }
    if (!Number.isInteger(T) || T < 1 || T > config.maxSeqLen) {
      throw new RangeError(`model: T must be in [1, ${config.maxSeqLen}], got ${T}`);
    }
    const model = new GPT2(gpu, config, B, T, gradAccumSteps);
    try {
      model.#ops = await createOps(gpu, config);
      model.#record();
    } catch (e) {
      model.destroy();
      throw e;
    }
    return model;
  }

  #alloc(floats: number, label: string): GPUBuffer {
    const buffer = createBuffer(this.gpu, floats * 4, label);
    this.#buffers.push(buffer);
    return buffer;
  }

  /** The range of `tensor` in one of the flat buffers. */
  view(flat: FlatName, tensor: ParamTensor): Binding {
    return subRange(this[flat], tensor.offset * 4, tensor.size * 4);
  }

  #record(): void {
    const { B, T, config } = this;
    const { numLayers: L, channels: C, numHeads: NH, vocabSize: V, paddedVocabSize: Vp } = config;
    const N = B * T;
    const lay = this.layout;
    const ops = this.#ops;
    const p = (t: ParamTensor) => this.view("params", t);
    const g = (t: ParamTensor) => this.view("grads", t);
    const pb = (t: ParamTensor | null) => t && p(t);
    const gb = (t: ParamTensor | null) => t && g(t);

    const encoded = this.#alloc(N * C, "encoded");
    const acts: LayerActs[] = Array.from({ length: L }, (_, l) => ({
      ln1: this.#alloc(N * C, `ln1[${l}]`),
      ln1Mean: this.#alloc(N, `ln1_mean[${l}]`),
      ln1Rstd: this.#alloc(N, `ln1_rstd[${l}]`),
      qkv: this.#alloc(N * 3 * C, `qkv[${l}]`),
      atty: this.#alloc(N * C, `atty[${l}]`),
      lse: this.#alloc(B * NH * T, `att_lse[${l}]`),
      attproj: this.#alloc(N * C, `attproj[${l}]`),
      residual2: this.#alloc(N * C, `residual2[${l}]`),
      ln2: this.#alloc(N * C, `ln2[${l}]`),
      ln2Mean: this.#alloc(N, `ln2_mean[${l}]`),
      ln2Rstd: this.#alloc(N, `ln2_rstd[${l}]`),
      fch: this.#alloc(N * 4 * C, `fch[${l}]`),
      fchGelu: this.#alloc(N * 4 * C, `fch_gelu[${l}]`),
      fcproj: this.#alloc(N * C, `fcproj[${l}]`),
      residual3: this.#alloc(N * C, `residual3[${l}]`),
    }));
    const lnf = this.#alloc(N * C, "lnf");
    const lnfMean = this.#alloc(N, "lnf_mean");
    const lnfRstd = this.#alloc(N, "lnf_rstd");
    // Backward scratch, reused by every layer.
    const dresidual = this.#alloc(N * C, "dresidual"); // d loss / d residual stream, +=
    const dln = this.#alloc(N * C, "dln"); // d of a LayerNorm output (ln1, ln2, lnf)
    const datty = this.#alloc(N * C, "datty");
    const dqkv = this.#alloc(N * 3 * C, "dqkv");
    const dfch = this.#alloc(N * 4 * C, "dfch"); // d fch_gelu, then d fch in place
    const delta = this.#alloc(B * NH * T, "att_delta");
    this.#clearEachStep = [dresidual];
    const losses = this.#alloc(N, "losses"); // (B,T) per-token loss
    const scratch = this.#alloc(classifierScratchBytes(this.gpu, N, Vp) / 4, "logits scratch");
    const shape = { N, C, V, Vp };
    const clsForward = { losses, x: lnf, wte: p(lay.wte), targets: this.targets, scratch };
    const clsTrain = ops.classifier.forwardBackward(
      { ...clsForward, dx: dln, dwte: g(lay.wte) },
      { ...shape, dloss: 1 / (N * this.gradAccumSteps) },
    );
    const clsEval = ops.classifier.forward(clsForward, shape);
    for (let k = 0; k <= this.gradAccumSteps; k++) {
      this.#meanLoss.push(ops.classifier.meanLoss(
        { out: subRange(this.#lossSlots, k * 4, 4), losses },
        { N },
      ));
    }
    this.#lastX = this.#alloc(B * C, "sampled rows of lnf");
    this.#lastLogits = this.#alloc(B * Vp, "sampled logits");
    this.#logitsDispatches = ops.classifier.logits(
      { logits: this.#lastLogits, x: this.#lastX, wte: p(lay.wte) },
      { row0: 0, rows: B, C, V, Vp },
    );
    this.#lnf = lnf;

    // ---- forward
    const forward: Dispatch[] = [];
    forward.push(...ops.embedding.forward(
      { out: encoded, tokens: this.inputs, wte: p(lay.wte), wpe: p(lay.wpe) },
      { B, T, C, V: config.paddedVocabSize },
    ));
    for (let l = 0; l < L; l++) {
      const w = lay.layers[l], a = acts[l];
      const residual = l === 0 ? encoded : acts[l - 1].residual3;
      forward.push(
        ...ops.layernorm.forward(
          {
            out: a.ln1,
            mean: a.ln1Mean,
            rstd: a.ln1Rstd,
            inp: residual,
            weight: p(w.ln1w),
            bias: pb(w.ln1b),
          },
          { N, C },
        ),
        ...ops.matmul.forward({ out: a.qkv, inp: a.ln1, weight: p(w.qkvw), bias: pb(w.qkvb) }, {
          N,
          C,
          OC: 3 * C,
        }),
        ...ops.attention.forward({ out: a.atty, lse: a.lse, qkv: a.qkv }, { B, T, C, NH }),
        ...ops.matmul.forward(
          { out: a.attproj, inp: a.atty, weight: p(w.attprojw), bias: pb(w.attprojb) },
          { N, C, OC: C },
        ),
        ...ops.residual.forward({ out: a.residual2, a: residual, b: a.attproj }, { n: N * C }),
        ...ops.layernorm.forward(
          {
            out: a.ln2,
            mean: a.ln2Mean,
            rstd: a.ln2Rstd,
            inp: a.residual2,
            weight: p(w.ln2w),
            bias: pb(w.ln2b),
          },
          { N, C },
        ),
        ...ops.matmul.forward({ out: a.fch, inp: a.ln2, weight: p(w.fcw), bias: pb(w.fcb) }, {
          N,
          C,
          OC: 4 * C,
        }),
        ...ops.gelu.forward({ out: a.fchGelu, inp: a.fch }, { n: N * 4 * C }),
        ...ops.matmul.forward(
          { out: a.fcproj, inp: a.fchGelu, weight: p(w.fcprojw), bias: pb(w.fcprojb) },
          { N, C: 4 * C, OC: C },
        ),
        ...ops.residual.forward({ out: a.residual3, a: a.residual2, b: a.fcproj }, { n: N * C }),
      );
    }
    const last = acts[L - 1].residual3;
    forward.push(...ops.layernorm.forward(
      {
        out: lnf,
        mean: lnfMean,
        rstd: lnfRstd,
        inp: last,
        weight: p(lay.lnfw),
        bias: pb(lay.lnfb),
      },
      { N, C },
    ));

    // ---- backward: dresidual is d loss / d residual3[l], then (after ln2's +=) d residual2[l],
    // then (after ln1's +=) d residual3[l-1].
    const backward: Dispatch[] = [];
    backward.push(...ops.layernorm.backward(
      {
        dinp: dresidual,
        dweight: g(lay.lnfw),
        dbias: gb(lay.lnfb),
        dout: dln,
        inp: last,
        weight: p(lay.lnfw),
        mean: lnfMean,
        rstd: lnfRstd,
      },
      { N, C },
    ));
    for (let l = L - 1; l >= 0; l--) {
      const w = lay.layers[l], a = acts[l];
      const residual = l === 0 ? encoded : acts[l - 1].residual3;
      backward.push(
        ...ops.matmul.backward(
          {
            dinp: dfch,
            dweight: g(w.fcprojw),
            dbias: gb(w.fcprojb),
            dout: dresidual,
            inp: a.fchGelu,
            weight: p(w.fcprojw),
          },
          { N, C: 4 * C, OC: C },
        ),
        ...ops.gelu.backward({ dinp: dfch, inp: a.fch, dout: dfch }, { n: N * 4 * C }),
        ...ops.matmul.backward(
          {
            dinp: dln,
            dweight: g(w.fcw),
            dbias: gb(w.fcb),
            dout: dfch,
            inp: a.ln2,
            weight: p(w.fcw),
          },
          { N, C, OC: 4 * C },
        ),
        ...ops.layernorm.backward(
          {
            dinp: dresidual,
            dweight: g(w.ln2w),
            dbias: gb(w.ln2b),
            dout: dln,
            inp: a.residual2,
            weight: p(w.ln2w),
            mean: a.ln2Mean,
            rstd: a.ln2Rstd,
          },
          { N, C },
        ),
        ...ops.matmul.backward(
          {
            dinp: datty,
            dweight: g(w.attprojw),
            dbias: gb(w.attprojb),
            dout: dresidual,
            inp: a.atty,
            weight: p(w.attprojw),
          },
          { N, C, OC: C },
        ),
        ...ops.attention.backward(
          { dqkv, delta, dout: datty, qkv: a.qkv, out: a.atty, lse: a.lse },
          { B, T, C, NH },
        ),
        ...ops.matmul.backward(
          {
            dinp: dln,
            dweight: g(w.qkvw),
            dbias: gb(w.qkvb),
            dout: dqkv,
            inp: a.ln1,
            weight: p(w.qkvw),
          },
          { N, C, OC: 3 * C },
        ),
        ...ops.layernorm.backward(
          {
            dinp: dresidual,
            dweight: g(w.ln1w),
            dbias: gb(w.ln1b),
            dout: dln,
            inp: residual,
            weight: p(w.ln1w),
            mean: a.ln1Mean,
            rstd: a.ln1Rstd,
          },
          { N, C },
        ),
      );
    }
    backward.push(...ops.embedding.backward(
      {
        dwte: g(lay.wte),
        dwpe: g(lay.wpe),
        dout: dresidual,
        tokens: this.inputs,
        index: this.tokenIndex,
      },
      { B, T, C, V: config.paddedVocabSize },
    ));

    this.#forward = forward;
    this.#train = [...forward, ...clsTrain, ...backward];
    this.#eval = [...forward, ...clsEval];
    this.#dispatches = [
      ...forward,
      ...backward,
      ...clsTrain,
      ...clsEval,
      ...this.#meanLoss,
      ...this.#logitsDispatches,
    ];
  }

  /** Queue the micro-batch: inputs and targets (B,T) token ids. */
  uploadBatch(inputs: Uint32Array, targets: Uint32Array): void {
    const n = this.B * this.T;
    if (inputs.length !== n || targets.length !== n) {
      throw new RangeError(
        `uploadBatch: want ${n} = B*T tokens each, got ${inputs.length} inputs and ` +
          `${targets.length} targets`,
      );
    }
    writeBuffer(this.gpu, this.inputs, inputs as Uint32Array<ArrayBuffer>);
    writeBuffer(this.gpu, this.tokenIndex, buildTokenIndex(inputs, this.config.vocabSize));
    writeBuffer(this.gpu, this.targets, targets as Uint32Array<ArrayBuffer>);
  }

  /**
   * Start a new accumulation: the gradients are zeroed (encoded into the next step's commands)
   * and the micro-step count restarts.
   */
  zeroGrads(): void {
    this.#zeroPending = true;
    this.#micro = 0;
  }

  /**
   * Encode and submit one training micro-step (forward, loss, backward; gradients +=) on the
   * uploaded batch. Does not wait. At most `gradAccumSteps` micro-steps per zeroGrads().
   */
  step(): void {
    if (this.#micro >= this.gradAccumSteps) {
      throw new Error(
        `step: ${this.#micro} micro-steps since zeroGrads() (gradAccumSteps ${this.gradAccumSteps})`,
      );
    }
    const encoder = this.gpu.device.createCommandEncoder();
    if (this.#zeroPending) encoder.clearBuffer(this.grads);
    this.#zeroPending = false;
    for (const b of this.#clearEachStep) encoder.clearBuffer(b);
    this.#encode(encoder, this.#train, this.#meanLoss[this.#micro++]);
    this.gpu.device.queue.submit([encoder.finish()]);
    this.#lastWasEval = false;
  }

  /** Encode and submit a forward pass computing the loss only (for readLoss); does not wait. */
  evalStep(): void {
    const encoder = this.gpu.device.createCommandEncoder();
    this.#encode(encoder, this.#eval, this.#meanLoss[this.gradAccumSteps]);
    this.gpu.device.queue.submit([encoder.finish()]);
    this.#lastWasEval = true;
  }

  /** One compute pass: `dispatches` in order, then `last` if given. */
  #encode(encoder: GPUCommandEncoder, dispatches: readonly Dispatch[], last?: Dispatch): void {
    const pass = encoder.beginComputePass();
    for (const d of dispatches) d.encode(pass);
    last?.encode(pass);
    pass.end();
  }

  /**
   * Run the forward on the uploaded inputs and return the logits (B, V) at position
   * `positions[b]` of each row b (for sampling: the last real token of each row). Waits.
   */
  async logitsAt(positions: readonly number[]): Promise<Float32Array> {
    const { B, T } = this;
    const { channels: C, vocabSize: V, paddedVocabSize: Vp } = this.config;
    if (
      positions.length !== B || positions.some((t) => !(Number.isInteger(t) && t >= 0 && t < T))
    ) {
      throw new RangeError(`logitsAt: want ${B} positions in [0, ${T}), got [${positions}]`);
    }
    const encoder = this.gpu.device.createCommandEncoder();
    this.#encode(encoder, this.#forward);
    positions.forEach((t, b) =>
      encoder.copyBufferToBuffer(this.#lnf, (b * T + t) * C * 4, this.#lastX, b * C * 4, C * 4)
    );
    this.#encode(encoder, this.#logitsDispatches);
    this.gpu.device.queue.submit([encoder.finish()]);
    const padded = await readF32(this.gpu, this.#lastLogits);
    this.gpu.throwIfFailed("model logits");
    const out = new Float32Array(B * V);
    for (let b = 0; b < B; b++) out.set(padded.subarray(b * Vp, b * Vp + V), b * V);
    return out;
  }

  /**
   * Fix the optimizer's hyperparameters (once per run, before the first optimizerStep):
   * AdamW with weight decay on `[0, layout.decayFloats)` (every 2-D tensor) and none after.
   */
  setOptimizer(config: OptimizerConfig): void {
    const { totalFloats, decayFloats } = this.layout;
    const norm = this.#ops.gradNorm.bind(
      { grads: this.grads, result: this.#normScale },
      { n: totalFloats, clip: config.gradClip },
    );
    const adamw = this.#ops.adamw.bind(
      { params: this.params, grads: this.grads, m: this.m, v: this.v, normScale: this.#normScale },
      [{ start: 0, end: decayFloats, decay: true }, {
        start: decayFloats,
        end: totalFloats,
        decay: false,
      }],
      config,
    );
    this.#dispatches.push(...norm, ...adamw.dispatches);
    this.#optimizer = { dispatches: [...norm, ...adamw.dispatches], adamw };
  }

  /**
   * Submit one optimizer step on the accumulated (and all-reduced) gradients: global norm,
   * clip scale, AdamW with step number `t` (1-based) and learning rate `lr`. Does not wait.
   */
  optimizerStep(t: number, lr: number): void {
    if (!this.#optimizer) throw new Error("optimizerStep: call setOptimizer first");
    this.#optimizer.adamw.setStep(t, lr);
    const encoder = this.gpu.device.createCommandEncoder();
    this.#encode(encoder, this.#optimizer.dispatches);
    this.gpu.device.queue.submit([encoder.finish()]);
  }

  /** The global gradient norm (before clipping) of the last optimizerStep. Waits for the GPU. */
  async readGradNorm(): Promise<number> {
    const [norm] = await readF32(this.gpu, this.#normScale);
    this.gpu.throwIfFailed("optimizer step");
    return norm;
  }

  /**
   * The mean loss of the micro-steps since zeroGrads() (the mean over all their B*T targets),
   * or of the last evalStep. Waits for the GPU: call it every few steps, not every step.
   */
  async readLoss(): Promise<number> {
    if (this.#lastWasEval) {
      const [loss] = await readF32(this.gpu, subRange(this.#lossSlots, this.gradAccumSteps * 4, 4));
      this.gpu.throwIfFailed("model eval step");
      return loss;
    }
    if (this.#micro === 0) throw new Error("readLoss: no step or evalStep since zeroGrads()");
    const slots = await readF32(this.gpu, subRange(this.#lossSlots, 0, this.#micro * 4));
    this.gpu.throwIfFailed("model step");
    return slots.reduce((sum, x) => sum + x, 0) / this.#micro;
  }

  /** Upload a whole flat buffer (`layout.totalFloats` floats). */
  upload(flat: FlatName, data: Float32Array): void {
    if (data.length !== this.layout.totalFloats) {
      throw new RangeError(
        `upload ${flat}: want ${this.layout.totalFloats} floats, got ${data.length}`,
      );
    }
    writeBuffer(this.gpu, this[flat], data as Float32Array<ArrayBuffer>);
  }

  /** Upload one named tensor (e.g. "h.0.attn.c_attn.weight", our (out, in) layout). */
  uploadTensor(flat: FlatName, name: string, data: Float32Array): void {
    const tensor = this.layout.get(name);
    if (data.length !== tensor.size) {
      throw new RangeError(
        `upload ${flat} "${name}": want ${tensor.size} floats, got ${data.length}`,
      );
    }
    writeBuffer(this.gpu, this.view(flat, tensor), data as Float32Array<ArrayBuffer>);
  }

  /** Read back one named tensor. Waits for the GPU. */
  async downloadTensor(flat: FlatName, name: string): Promise<Float32Array> {
    return await readF32(this.gpu, this.view(flat, this.layout.get(name)));
  }

  /** Read back a whole flat buffer. Waits for the GPU. */
  async download(flat: FlatName): Promise<Float32Array> {
    const out = await readF32(this.gpu, this[flat]);
    return out.length === this.layout.totalFloats ? out : out.slice(0, this.layout.totalFloats);
  }

  /** Free every buffer and prepared dispatch. */
  destroy(): void {
    for (const d of this.#dispatches) d.destroy();
    for (const b of this.#buffers) b.destroy();
    this.#ops?.gradNorm.destroy();
    this.#ops?.layernorm.destroy();
    this.#ops?.matmul.destroy();
    this.#dispatches = [];
    this.#buffers = [];
  }
}

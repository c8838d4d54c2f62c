/**
 * GPT-2 on the GPU: flat parameter, gradient and AdamW buffers (gpt2_buffers.ts), an
 * activation arena sized once for (B, T), and fixed lists of prepared dispatches recorded once
 * and replayed every step.
 *
 *   step()       one micro-step: forward, fused classifier (loss, dlogits, dwte), backward;
 *                parameter gradients accumulate (+=) until zeroGrads().
 *   encodeStepSegment()  the same micro-step in segments (gradSegments), for a bucketed
 *                all-reduce that overlaps the backward (distributed/grad_sync.ts).
 *   evalStep()   forward and per-token losses only.
 *   logits...    forward and the logits of one position, for sampling.
 *
 * Each call encodes one command buffer and submits it without waiting; only the read*()
 * methods wait for the GPU. Structure and names follow llm.c's gpt2_forward / gpt2_backward.
 *
 * In bf16 (see precision.ts) the kernels read a bf16 working copy of the f32 master weights,
 * which AdamW rewrites with every step and upload() refreshes.
 */
import type { Gpu } from "../gpu/device.ts";
import { readF32, subRange, writeBuffer } from "../gpu/buffer.ts";
import type { Dispatch } from "../gpu/kernel.ts";
import { elementBytes, type StorageType } from "../gpu/storage.ts";
import type { GPT2Config } from "./config.ts";
import { activationStorage, type Precision } from "./precision.ts";
import { paramLayout } from "./params.ts";
import { buildTokenIndex, tokenIndexLength } from "./embedding.ts";
import {
  createGpt2Ops,
  destroyGpt2Ops,
  type Gpt2Graph,
  type Gpt2Ops,
  recordGpt2Graph,
} from "./_gpt2_graph.ts";
import { StepHistory, type StepStats } from "./step_stats.ts";
import { type GradSegment, tensorRanges } from "./grad_segments.ts";
import { checkShape, type GPT2Shape } from "./gpt2_shape.ts";
import { Gpt2Buffers } from "./gpt2_buffers.ts";
import { Gpt2Optimizer, type OptimizerConfig, weightCopyDispatches } from "./gpt2_optimizer.ts";

/** The dynamic loss scale of an f16 model (see {@link GPT2.readLossScale}). */
export interface LossScaleState {
  /** The scale the next step multiplies the loss by. */
  scale: number;
  /** Optimizer steps skipped so far because their gradients overflowed. */
  skippedSteps: number;
}

export type { FlatName } from "./gpt2_buffers.ts";

export type { OptimizerConfig } from "./gpt2_optimizer.ts";
export type { GPT2Shape } from "./gpt2_shape.ts";

/** A GPT-2 built for one (B, T) on one device. */
export class GPT2 extends Gpt2Buffers {
  /** Token ids (B,T) u32, uploaded by uploadBatch. */
  readonly inputs: GPUBuffer;
  readonly targets: GPUBuffer;
  /** The inputs grouped by token, for the deterministic dwte backward (see embedding.ts). */
  readonly tokenIndex: GPUBuffer;
  #activationBytes = 0;
  /** Dispatches to destroy with the model (the graph's and the optimizer's). */
  #dispatches: Dispatch[] = [];
  #ops!: Gpt2Ops;
  #graph!: Gpt2Graph;
  #zeroPending = false;
  /** The segment encodeStepSegment() expects next (0: none started). */
  #nextSegment = 0;
  /** Mean loss of each micro-step of the current accumulation, then the last eval's. */
  #lossSlots: GPUBuffer;
  /** Micro-steps since zeroGrads(). */
  #micro = 0;
  /** Whether the last loss computed was an evalStep's. */
  #lastWasEval = false;
  /** grad_norm's result: [global L2 norm, clip scale, skip flag]. */
  #normScale: GPUBuffer;
  /** f16's loss scale state [scale, good steps in a row, skipped steps], else null. */
  #lossScale: GPUBuffer | null = null;
  #growthInterval = 2000;
  /** Loss and grad norm of the steps not yet read back. */
  #history: StepHistory;
  #optimizer: Gpt2Optimizer | null = null;

  private constructor(
    gpu: Gpu,
    readonly config: GPT2Config,
    readonly B: number,
    readonly T: number,
    readonly gradAccumSteps: number,
    readonly historySteps: number,
    readonly precision: Precision,
    type: StorageType,
  ) {
    super(gpu, paramLayout(config), type);
    this.inputs = this.allocFloats(B * T, "inputs");
    this.targets = this.allocFloats(B * T, "targets");
    this.tokenIndex = this.allocFloats(tokenIndexLength(B * T), "token index");
    this.#normScale = this.allocFloats(2, "grad norm and clip scale");
    this.#lossSlots = this.allocFloats(gradAccumSteps + 1, "mean loss per micro-step, eval loss");
    if (type === "f16") this.#lossScale = this.allocFloats(4, "loss scale");
    const recordFloats = StepHistory.recordFloats(gradAccumSteps, this.#lossScale !== null);
    this.#history = new StepHistory(
      gpu,
      this.allocFloats(historySteps * recordFloats, "step stats history"),
      historySteps,
      gradAccumSteps,
      this.#lossScale,
    );
  }

  /**
   * The segments of a training micro-step in run order, with the gradient ranges each one
   * finishes (on the last micro-step of an accumulation); together they cover
   * `[0, layout.totalFloats)` once.
   */
  get gradSegments(): GradSegment[] {
    return this.#graph.trainSegments.map(({ label, finishes }) => ({
      label,
      ranges: tensorRanges(finishes),
    }));
  }

  /** Allocate the buffers and record the dispatch lists for `config` at (B, T). */
  static async create(
    gpu: Gpu,
    config: GPT2Config,
    { B, T, gradAccumSteps = 1, historySteps = 1, precision = "f32", lossScale = {} }: GPT2Shape,
  ): Promise<GPT2> {
    const type = activationStorage(precision);
    const { initial = 2 ** 16, growthInterval = 2000, skippedSteps = 0 } = lossScale;
    checkShape(gpu, config, { B, T, gradAccumSteps, historySteps, type, initialScale: initial });
    const model = new GPT2(gpu, config, B, T, gradAccumSteps, historySteps, precision, type);
    try {
      if (model.#lossScale) {
        model.#growthInterval = growthInterval;
        writeBuffer(gpu, model.#lossScale, new Float32Array([initial, 0, skippedSteps, 0]));
      }
      const ops = model.#ops = await createGpt2Ops(gpu, config, type);
      const arena: GPUBuffer[] = [];
      const record = (alloc: (bytes: number, label: string) => GPUBuffer) =>
        recordGpt2Graph({
          gpu,
          ops,
          layout: model.layout,
          B,
          T,
          gradAccumSteps,
          type,
          alloc,
          weights: model.weights,
          grads: model.grads,
          inputs: model.inputs,
          targets: model.targets,
          tokenIndex: model.tokenIndex,
          lossSlots: model.#lossSlots,
          lossScale: model.#lossScale,
        });
      model.#graph = record((bytes, label) => {
        model.#activationBytes += bytes;
        arena.push(model.allocBytes(bytes, label));
        return arena.at(-1)!;
      });
      // Recording names the products; --autotune may then choose other matmul configurations
      // (one op at a time: timing needs the device to itself), and the lists are recorded
      // again over the same buffers, allocated in the same order.
      let retuned = false;
      for (const m of [ops.matmul, ops.classifier.matmul]) retuned = (await m.tune()) || retuned;
      if (retuned) {
        model.#graph.all.forEach((d) => d.destroy());
        let next = 0;
        model.#graph = record(() => arena[next++]);
      }
      model.#dispatches.push(...model.#graph.all);
    } catch (e) {
      model.destroy();
      throw e;
    }
    return model;
  }

  /**
   * Bytes of the activation arena: activations and their gradients, LayerNorm and attention
   * statistics, the logits scratch (what `precision` halves, beside the flat buffers).
   */
  get activationBytes(): number {
    return this.#activationBytes;
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
    const V = this.config.vocabSize;
    const bad = targets.findIndex((t) => t >= V);
    if (bad >= 0) {
      throw new RangeError(`uploadBatch: target ${targets[bad]} at ${bad} is >= V=${V}`);
    }
    writeBuffer(this.gpu, this.inputs, inputs as Uint32Array<ArrayBuffer>);
    writeBuffer(this.gpu, this.tokenIndex, buildTokenIndex(inputs, V));
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
    const encoder = this.gpu.device.createCommandEncoder();
    this.#beginStep(encoder, "step");
    this.#encode(encoder, this.#graph.train, this.#graph.meanLoss[this.#micro - 1]);
    this.gpu.device.queue.submit([encoder.finish()]);
  }

  /**
   * Encode segment `k` of a training micro-step (see {@link gradSegments}) into `encoder`
   * without submitting, so that the caller can copy out the gradients it finishes and submit
   * the segments one by one. Segments 0 to n-1, in order, are one step(): the same dispatches
   * in the same order.
   */
  encodeStepSegment(encoder: GPUCommandEncoder, k: number): void {
    const segments = this.#graph.trainSegments;
    if (k !== this.#nextSegment) {
      throw new Error(
        `encodeStepSegment: got segment ${k}, want ${this.#nextSegment} of ${segments.length}`,
      );
    }
    if (k === 0) this.#beginStep(encoder, "encodeStepSegment");
    const last = k === segments.length - 1;
    this.#encode(
      encoder,
      segments[k].dispatches,
      last ? this.#graph.meanLoss[this.#micro - 1] : undefined,
    );
    this.#nextSegment = last ? 0 : k + 1;
  }

  /** Encode what precedes a micro-step's dispatches (zeroing, clears) and count it. */
  #beginStep(encoder: GPUCommandEncoder, caller: string): void {
    if (this.#nextSegment !== 0) {
      throw new Error(`${caller}: segment ${this.#nextSegment} of the last micro-step is missing`);
    }
    if (this.#micro >= this.gradAccumSteps) {
      throw new Error(
        `${caller}: ${this.#micro} micro-steps since zeroGrads() ` +
          `(gradAccumSteps ${this.gradAccumSteps})`,
      );
    }
    if (this.#zeroPending) encoder.clearBuffer(this.grads);
    this.#zeroPending = false;
    for (const b of this.#graph.clearEachStep) encoder.clearBuffer(b);
    this.#micro++;
    this.#lastWasEval = false;
  }

  /** Encode and submit a forward pass computing the loss only (for readLoss); does not wait. */
  evalStep(): void {
    const encoder = this.gpu.device.createCommandEncoder();
    this.#encode(encoder, this.#graph.eval, this.#graph.meanLoss[this.gradAccumSteps]);
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
    this.#encode(encoder, this.#graph.forward);
    const row = C * elementBytes(this.type); // C is a multiple of 4: whole words in bf16
    positions.forEach((t, b) =>
      encoder.copyBufferToBuffer(
        this.#graph.lnf,
        (b * T + t) * row,
        this.#graph.lastX,
        b * row,
        row,
      )
    );
    this.#encode(encoder, this.#graph.logits);
    this.gpu.device.queue.submit([encoder.finish()]);
    const padded = await readF32(this.gpu, this.#graph.lastLogits);
    this.gpu.throwIfFailed("model logits");
    const out = new Float32Array(B * V);
    for (let b = 0; b < B; b++) out.set(padded.subarray(b * Vp, b * Vp + V), b * V);
    return out;
  }

  /** Record the optimizer step (gpt2_optimizer.ts) once per run, before the first optimizerStep. */
  async setOptimizer(config: OptimizerConfig): Promise<void> {
    this.#optimizer?.destroy();
    this.#optimizer = null;
    this.#optimizer = await Gpt2Optimizer.create(
      this.gpu,
      this.#ops,
      this.layout,
      this.type,
      {
        params: this.params,
        grads: this.grads,
        m: this.m,
        v: this.v,
        weights: this.weights,
        normScale: this.#normScale,
        lossScale: this.#lossScale,
      },
      config,
      this.#growthInterval,
    );
  }

  /** Submit optimizer step `t` (1-based) at `lr` (and Muon's `muonLr`); does not wait. */
  optimizerStep(t: number, lr: number, muonLr?: number): void {
    if (!this.#optimizer) throw new Error("optimizerStep: call setOptimizer first");
    if (this.#micro !== this.gradAccumSteps) {
      throw new Error(
        `optimizerStep: ${this.#micro} micro-steps since zeroGrads(), want ${this.gradAccumSteps}`,
      );
    }
    this.#optimizer.setStep(t, lr, muonLr);
    const encoder = this.gpu.device.createCommandEncoder();
    this.#encode(encoder, this.#optimizer.dispatches);
    this.#history.record(encoder, this.#lossSlots, this.#normScale);
    this.gpu.device.queue.submit([encoder.finish()]);
  }

  /** Loss, grad norm (and f16's loss scale) of the steps since the last call: one wait. */
  readStepStats(): Promise<StepStats[]> {
    return this.#history.read();
  }

  /** f16's loss scale and the steps skipped so far (else scale 1, none). Waits. */
  async readLossScale(): Promise<LossScaleState> {
    if (!this.#lossScale) return { scale: 1, skippedSteps: 0 };
    const [scale, , skippedSteps] = await readF32(this.gpu, this.#lossScale);
    this.gpu.throwIfFailed("loss scale");
    return { scale, skippedSteps };
  }

  /** The global gradient norm (before clipping) of the last optimizerStep. Waits for the GPU. */
  async readGradNorm(): Promise<number> {
    const [norm] = await readF32(this.gpu, this.#normScale);
    this.gpu.throwIfFailed("optimizer step");
    return norm;
  }

  /** Mean loss of the micro-steps since zeroGrads(), or of the last evalStep. Waits. */
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

  /** The (B,T) per-token losses of the last evalStep (or step). Waits for the GPU. */
  async readTokenLosses(): Promise<Float32Array> {
    const losses = await readF32(this.gpu, this.#graph.tokenLosses);
    this.gpu.throwIfFailed("model token losses");
    return losses;
  }

  /** Free every buffer and prepared dispatch. */
  override destroy(): void {
    for (const d of this.#dispatches) d.destroy();
    this.#optimizer?.destroy();
    this.#optimizer = null;
    if (this.#ops) destroyGpt2Ops(this.#ops);
    this.#dispatches = [];
    super.destroy();
  }

  /** Submit a refresh of the working copy of `[start, end)` after an upload (f32: nothing). */
  protected override refreshWeights(start: number, end: number): void {
    if (this.weights === this.params) return;
    const dispatches = weightCopyDispatches(this.#ops, this, this.type, start, end);
    const encoder = this.gpu.device.createCommandEncoder();
    this.#encode(encoder, dispatches);
    this.gpu.device.queue.submit([encoder.finish()]);
    for (const d of dispatches) d.destroy(); // wgpu frees them once the GPU is done
  }
}

/**
 * The GPT-2 model's optimizer step, recorded once: the global gradient norm and clip scale
 * (with f16's loss-scale update), AdamW over the flat buffers, and Muon for the blocks' 2-D
 * weights when chosen. AdamW also writes the low-precision working copy of the weights; Muon
 * writes the f32 master weights only, so the copy of its tensors is refreshed after it.
 */
import type { Gpu } from "../gpu/device.ts";
import { subRange } from "../gpu/buffer.ts";
import type { Dispatch } from "../gpu/kernel.ts";
import { elementBytes, storageBytes, type StorageType } from "../gpu/storage.ts";
import type { ParamLayout } from "./params.ts";
import type { Gpt2Ops } from "./_gpt2_graph.ts";
import { createMatmul, type MatmulOp } from "./matmul.ts";
import type { AdamWConfig, AdamWSegment, AdamWStep } from "../optim/adamw.ts";
import { createMuon, MUON_MOMENTUM, type MuonOp, type MuonStep } from "../optim/muon.ts";

/** AdamW hyperparameters fixed for a run, and the global gradient-norm clip (0 = off). */
export interface OptimizerConfig extends AdamWConfig {
  gradClip: number;
  /**
   * "muon": Muon for the 2-D weights inside the blocks (its momentum lives in `m`'s slots for
   * them; `v`'s stay zero), AdamW for wte, wpe and the 1-D tensors. Default "adamw".
   */
  optimizer?: "adamw" | "muon";
}

/** The model's buffers the optimizer reads and writes. */
export interface OptimizerBuffers {
  params: GPUBuffer;
  grads: GPUBuffer;
  m: GPUBuffer;
  v: GPUBuffer;
  /** The working copy the kernels read: `params` itself in f32. */
  weights: GPUBuffer;
  /** grad_norm's result: [global L2 norm, clip scale, skip flag]. */
  normScale: GPUBuffer;
  /** f16's loss scale state, else null. */
  lossScale: GPUBuffer | null;
}

/** Dispatches writing the working copy of the master weights `[start, end)` (in floats). */
export function weightCopyDispatches(
  ops: Gpt2Ops,
  b: Pick<OptimizerBuffers, "params" | "weights">,
  type: StorageType,
  start: number,
  end: number,
): Dispatch[] {
  return ops.adamw.copy({
    params: subRange(b.params, start * 4, (end - start) * 4),
    copy: subRange(b.weights, start * elementBytes(type), storageBytes(type, end - start)),
  }, end - start);
}

/** One run's optimizer step; see the module doc. */
export class Gpt2Optimizer {
  private constructor(
    /** The step's dispatches, in order. */
    readonly dispatches: Dispatch[],
    readonly adamw: AdamWStep,
    readonly muon: MuonStep | null,
    readonly muonOps: { muon: MuonOp; matmul: MatmulOp | null } | null,
  ) {}

  /** Record the step for `layout`'s model with `config` (Muon's kernels compile here). */
  static async create(
    gpu: Gpu,
    ops: Gpt2Ops,
    layout: ParamLayout,
    type: StorageType,
    b: OptimizerBuffers,
    config: OptimizerConfig,
    growthInterval: number,
  ): Promise<Gpt2Optimizer> {
    const { totalFloats, decayFloats, layers } = layout;
    const muonTensors = config.optimizer === "muon"
      ? layers.flatMap((l) => [l.qkvw, l.attprojw, l.fcw, l.fcprojw])
      : [];
    if (b.lossScale && muonTensors.length > 0) {
      throw new Error("precision f16: Muon does not skip overflowed steps yet; use AdamW or bf16");
    }
    // The blocks' matrices are the end of the 2-D range (params.ts), after wte and wpe.
    const adamwDecayEnd = muonTensors.length > 0 ? layers[0].qkvw.offset : decayFloats;
    const segments: AdamWSegment[] = [
      { start: 0, end: adamwDecayEnd, decay: true },
      { start: decayFloats, end: totalFloats, decay: false },
    ];
    const norm = ops.gradNorm.bind(
      { grads: b.grads, result: b.normScale, lossScale: b.lossScale ?? undefined },
      { n: totalFloats, clip: config.gradClip, growthInterval },
    );
    const copy = b.weights === b.params ? undefined : b.weights;
    const adamw = ops.adamw.bind(
      { params: b.params, grads: b.grads, m: b.m, v: b.v, normScale: b.normScale, copy },
      segments,
      config,
    );
    if (muonTensors.length === 0) {
      return new Gpt2Optimizer([...norm, ...adamw.dispatches], adamw, null, null);
    }
    // Muon's products are f32 (the params and gradients are).
    const matmul = ops.matmul.type === "f32" ? null : await createMatmul(gpu);
    const muonOps = {
      muon: await createMuon(gpu, { gemm: matmul ?? ops.matmul, gradNorm: ops.gradNorm }),
      matmul,
    };
    const muon = muonOps.muon.bind(
      { params: b.params, grads: b.grads, momentum: b.m, normScale: b.normScale },
      muonTensors.map((t) => ({
        name: t.name,
        offset: t.offset,
        rows: t.shape[0],
        cols: t.shape[1],
      })),
      { momentum: MUON_MOMENTUM, weightDecay: config.weightDecay },
    );
    const muonCopy = copy ? weightCopyDispatches(ops, b, type, adamwDecayEnd, decayFloats) : [];
    const dispatches = [...norm, ...adamw.dispatches, ...muon.dispatches, ...muonCopy];
    return new Gpt2Optimizer(dispatches, adamw, muon, muonOps);
  }

  /** Set step `t` (1-based) and the learning rates for the next submit of {@link dispatches}. */
  setStep(t: number, lr: number, muonLr?: number): void {
    if (this.muon && muonLr === undefined) {
      throw new Error("optimizerStep: the optimizer is Muon: give its learning rate");
    }
    this.adamw.setStep(t, lr);
    this.muon?.setLr(muonLr!);
  }

  destroy(): void {
    for (const d of this.dispatches) d.destroy();
    this.muonOps?.muon.destroy();
    this.muonOps?.matmul?.destroy();
  }
}

/**
 * `bench gpu`'s kernel stages at the shapes of one training micro-step: every matmul of the
 * step (forward, dX, dW of the four linear layers, and the lm_head's three products in the
 * classifier's row chunks), then attention, the fused classifier, LayerNorm and GELU, each per
 * precision. Buffers hold zeros: kernel times do not depend on the values.
 */
import { createBuffer } from "../../gpu/buffer.ts";
import { elementBytes, storageBytes, type StorageType } from "../../gpu/storage.ts";
import type { GPT2Config } from "../../model/config.ts";
import { createMatmul, type GemmDesc, type GemmTypes } from "../../model/matmul.ts";
import { createAttention } from "../../model/attention.ts";
import { classifierScratchBytes, createClassifier } from "../../model/classifier.ts";
import { createLayerNorm } from "../../model/layernorm.ts";
import { createGelu } from "../../model/gelu.ts";
import { residualStreamType } from "../../model/_gpt2_graph.ts";
import { measureDispatches, type StageContext } from "./gpu_report.ts";

/** The micro-step the kernels are measured at: a model config and B x T tokens. */
export interface OpShape {
  config: GPT2Config;
  B: number;
  T: number;
}

/**
 * Buffers sized for f32, which serve every precision (16-bit tensors use their first half),
 * destroyed together.
 */
class Scratch {
  #buffers: GPUBuffer[] = [];
  constructor(private ctx: StageContext) {}
  floats(count: number, label: string): GPUBuffer {
    const b = createBuffer(this.ctx.gpu, storageBytes("f32", count), label);
    this.#buffers.push(b);
    return b;
  }
  destroy(): void {
    for (const b of this.#buffers.splice(0)) b.destroy();
  }
}

/**
 * Rows of the classifier's logits chunk for a scratch budget (default: the model's): whole
 * 64-row tiles when it takes more than one chunk, as the classifier rounds them.
 */
function classifierRows(ctx: StageContext, N: number, Vp: number, budgetBytes?: number): number {
  const rows = classifierScratchBytes(ctx.gpu, N, Vp, budgetBytes) / (Vp * 4);
  return rows > 64 && rows < N ? rows - rows % 64 : rows;
}

/** Times every matmul of the micro-step in each precision. */
export async function measureMatmuls(
  ctx: StageContext,
  shape: OpShape,
  precisions: StorageType[],
): Promise<void> {
  const stage = "matmul";
  const { channels: C, paddedVocabSize: Vp } = shape.config;
  const N = shape.B * shape.T;
  const R = classifierRows(ctx, N, Vp);
  ctx.report.stage(stage, `N = B*T = ${shape.B}*${shape.T}, C = ${C}; lm_head in ${R}-row chunks`);
  if (!ctx.budget.begin(stage)) {
    ctx.report.skip(stage, "all matmuls", "no time left in the budget");
    return;
  }
  // [name, rows, inputs, outputs]: the four linear layers of a block, then lm_head (tied wte).
  const layers: [string, number, number, number][] = [
    ["qkv", N, C, 3 * C],
    ["attn proj", N, C, C],
    ["fc", N, C, 4 * C],
    ["fc proj", N, 4 * C, C],
    ["lm_head", R, C, Vp],
  ];
  for (const type of precisions) {
    const matmul = await createMatmul(ctx.gpu, { type });
    const note = type === "f16" ? `f16 products: ${matmul.f16Products}` : undefined;
    for (const [name, M, IC, OC] of layers) {
      const s = new Scratch(ctx);
      const x = s.floats(M * IC, "inp"), w = s.floats(OC * IC, "weight");
      const y = s.floats(M * OC, "out"), dx = s.floats(M * IC, "dinp");
      const dw = s.floats(OC * IC, "dweight");
      // lm_head's logits and dlogits are f32 (the classifier's scratch); dweight is f32 always.
      const head = name === "lm_head";
      const act: StorageType = head ? "f32" : type;
      const products: [string, GemmDesc, GemmTypes][] = [
        [
          "forward",
          { c: y, a: x, b: w, M, N: OC, K: IC, aLayout: "mk", bLayout: "nk" },
          { a: type, b: type, c: act },
        ],
        [
          "dX",
          { c: dx, a: y, b: w, M, N: IC, K: OC, aLayout: "mk", bLayout: "kn" },
          { a: act, b: type, c: type },
        ],
        [
          "dW",
          { c: dw, a: y, b: x, M: OC, N: IC, K: M, aLayout: "km", bLayout: "kn", accumulate: true },
          { a: act, b: type, c: "f32" },
        ],
      ];
      for (const [product, d, types] of products) {
        const desc = { ...d, types, label: `${name} ${product}` };
        await measureDispatches(ctx, {
          stage,
          name: `${name} ${product}`,
          precision: type,
          shape: `${desc.M} x ${desc.N} x ${desc.K}`,
          flops: 2 * desc.M * desc.N * desc.K,
          note,
        }, async () => {
          await matmul.tune([desc]); // per the gpu's autotune mode (--autotune)
          return matmul.gemm(desc);
        });
      }
      s.destroy();
    }
    matmul.destroy();
  }
}

/** Times attention, the classifier, LayerNorm and GELU in each precision. */
export async function measureOps(
  ctx: StageContext,
  shape: OpShape,
  precisions: StorageType[],
): Promise<void> {
  const stage = "ops";
  const { channels: C, numHeads: NH, vocabSize: V, paddedVocabSize: Vp } = shape.config;
  const { B, T } = shape;
  const N = B * T, HS = C / NH;
  ctx.report.stage(stage, `B=${B} T=${T} C=${C} NH=${NH} Vp=${Vp}`);
  if (!ctx.budget.begin(stage)) {
    ctx.report.skip(stage, "attention, classifier, layernorm, gelu", "no time left in the budget");
    return;
  }
  const dims = `B=${B} T=${T}`;
  for (const type of precisions) {
    const s = new Scratch(ctx);
    const e = elementBytes(type);
    // Attention, in executed FLOPs per causal (query, key) pair and head channel: the forward
    // 4 (q.k, p.v), the backward 14 (scores again, dp, dq; then scores, dp, dk, dv).
    const qkv = s.floats(N * 3 * C, "qkv"), out = s.floats(N * C, "out");
    const dout = s.floats(N * C, "dout"), dqkv = s.floats(N * 3 * C, "dqkv");
    const lse = s.floats(B * NH * T, "lse"), delta = s.floats(B * NH * T, "delta");
    const pairs = B * NH * T * (T + 1) / 2, a = { B, T, C, NH };
    // Both kernel sets: per-row (the software adapters' default) and FA2-style tiles (GPUs').
    for (const kernels of ["rows", "tiled"] as const) {
      const attention = await createAttention(ctx.gpu, HS, { type, kernels });
      const note = `${kernels} kernels` +
        (type === "f16" ? `, f16 products: ${attention.f16Products}` : "");
      const spec = { stage, precision: type, shape: dims, note };
      await measureDispatches(
        ctx,
        { ...spec, name: "attention forward", flops: 4 * pairs * HS },
        () => attention.forward({ out, lse, qkv }, a),
      );
      await measureDispatches(
        ctx,
        { ...spec, name: "attention backward", flops: 14 * pairs * HS },
        () => attention.backward({ dqkv, delta, dout, qkv, out, lse }, a),
      );
    }

    // The classifier (lm_head, softmax, cross-entropy, dx, dwte): in the model's chunks, and in
    // as few as the device's binding limit allows.
    const classifier = await createClassifier(ctx.gpu, { type });
    const x = s.floats(N * C, "lnf"), wte = s.floats(Vp * C, "wte");
    const dwte = s.floats(Vp * C, "dwte"), losses = s.floats(N, "losses");
    const targets = s.floats(N, "targets");
    // The device's budget beside the 256 MiB one used before it came from the limits.
    const budgets = new Set([
      classifierRows(ctx, N, Vp, 256 * 2 ** 20),
      classifierRows(ctx, N, Vp),
    ]);
    for (const rows of budgets) {
      await measureDispatches(ctx, {
        stage,
        name: `classifier fwd+bwd, ${rows}-row chunks`,
        precision: type,
        shape: `${N} x ${Vp} x ${C}`,
        flops: 3 * 2 * N * C * Vp,
      }, () => {
        const scratch = s.floats(rows * Vp, "logits scratch");
        return classifier.forwardBackward(
          { losses, x, wte, targets, scratch, dx: out, dwte },
          { N, C, V, Vp, dloss: 1 / N },
        );
      });
    }
    classifier.destroy();

    // LayerNorm and GELU are memory-bound: GB/s of the tensors each must read and write once.
    const stream = residualStreamType(type);
    const layernorm = await createLayerNorm(ctx.gpu, { type, inputType: stream });
    const mean = s.floats(N, "mean"), rstd = s.floats(N, "rstd");
    const weight = s.floats(C, "ln weight"), dweight = s.floats(C, "ln dweight");
    const rowBytes = N * C * e, inBytes = N * C * elementBytes(stream);
    await measureDispatches(
      ctx,
      { stage, name: "layernorm forward", precision: type, shape: dims, bytes: inBytes + rowBytes },
      () => layernorm.forward({ out, mean, rstd, inp: x, weight, bias: null }, { N, C }),
    );
    await measureDispatches(ctx, {
      stage,
      name: "layernorm backward",
      precision: type,
      shape: dims,
      bytes: inBytes + 3 * rowBytes, // inp, dout, dinp read and written
    }, () =>
      layernorm.backward(
        { dinp: dout, dweight, dbias: null, dout: out, inp: x, weight, mean, rstd },
        { N, C },
      ));
    layernorm.destroy();
    const gelu = await createGelu(ctx.gpu, shape.config.gelu, type);
    const n = N * 4 * C, fc = s.floats(n, "fc"), fcGelu = s.floats(n, "fc gelu");
    await measureDispatches(
      ctx,
      { stage, name: "gelu forward", precision: type, shape: dims, bytes: 2 * n * e },
      () => gelu.forward({ out: fcGelu, inp: fc }, { n }),
    );
    await measureDispatches(
      ctx,
      { stage, name: "gelu backward (in place)", precision: type, shape: dims, bytes: 3 * n * e },
      () => gelu.backward({ dinp: fcGelu, inp: fc, dout: fcGelu }, { n }),
    );
    s.destroy();
  }
}

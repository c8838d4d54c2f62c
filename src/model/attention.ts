/**
 * Causal multi-head self-attention on the GPU, flash style (kernels/attention.wgsl).
 *
 * The forward keeps only the logsumexp of each query row (B, NH, T) instead of the (T, T)
 * attention matrix (805 MB at B=16, T=1024, NH=12); the backward recomputes the scores, in two
 * deterministic passes: dq over keys, then dk and dv over queries.
 *
 * Layouts (llm.c): qkv (B, T, 3C) with q, k, v of C channels per (b, t), head h owning
 * channels [h*HS, (h+1)*HS); out (B, T, C) heads concatenated; lse and delta (B, NH, T).
 */
import type { Gpu } from "../gpu/device.ts";
import { type Binding, subRange } from "../gpu/buffer.ts";
import { unitsPerPiece } from "../gpu/window.ts";
import { type Dispatch, Kernel } from "../gpu/kernel.ts";
import { specializeWgsl } from "../gpu/specialize_wgsl.ts";
import { elementBytes, specializeStorage, type StorageType } from "../gpu/storage.ts";
import source from "../../kernels/attention.wgsl" with { type: "text" };

/** Shape of one attention call. */
export interface AttentionShape {
  B: number;
  T: number;
  C: number;
  NH: number;
}

/** The attention operation: prepared forward and backward dispatches. */
export interface AttentionOp {
  /** Whether the inner products compute in f16 (see {@link AttentionOptions}). */
  readonly f16Products: boolean;
  /**
   * out (B,T,C) =, lse (B,NH,T) = <- qkv (B,T,3C).
   * `lse` (logsumexp of each row's scaled scores) is kept for the backward.
   */
  forward(
    b: { out: Binding; lse: Binding; qkv: Binding },
    s: AttentionShape,
  ): Dispatch[];
  /**
   * dqkv (B,T,3C) = (overwritten, not accumulated) <- dout (B,T,C), qkv, out and lse of the
   * forward. `delta` (B,NH,T) is scratch, overwritten. Two dispatches, in order.
   */
  backward(
    b: { dqkv: Binding; delta: Binding; dout: Binding; qkv: Binding; out: Binding; lse: Binding },
    s: AttentionShape,
  ): Dispatch[];
}

/** Rows (queries or keys) per workgroup, one invocation each. */
const ROWS = 64;

/** Options for {@link createAttention}. */
export interface AttentionOptions {
  /** Largest byte size bound per tensor (default `gpu.maxBinding`; tests pass less). */
  maxBinding?: number;
  /** Storage of qkv, out, dout and dqkv (default f32); lse and delta are f32. */
  type?: StorageType;
  /**
   * With f16 storage on a device with `shader-f16`, compute the inner products q.k and dout.v
   * in f16, flushed into f32 every 16 products (default true; false keeps f32 arithmetic).
   */
  f16Products?: boolean;
}

/** Compile the attention kernels for head size `HS` (= C / NH; a multiple of 4, at most 128). */
export async function createAttention(
  gpu: Gpu,
  HS: number,
  options: AttentionOptions = {},
): Promise<AttentionOp> {
  checkHeadSize(HS);
  const type = options.type ?? "f32";
  const f16Products = type === "f16" && gpu.hasF16 && options.f16Products !== false;
  const code = specializeStorage(
    f16Products
      ? specializeWgsl(source, { HS, ROWS, FLUSH4: 4 }, { dot_t: "f16" })
      : specializeWgsl(source, { HS, ROWS }),
    Object.fromEntries(["out_w", "qkv_f", "dqkv", "dout", "qkv", "out_r"].map((n) => [n, type])),
  );
  const [fwd, dq, dkdv] = await Promise.all(
    ["attention_forward", "attention_backward_dq", "attention_backward_dkdv"].map((entryPoint) =>
      Kernel.create(gpu, {
        label: `${entryPoint} (HS ${HS}${f16Products ? ", f16 products" : ""})`,
        code,
        entryPoint,
      })
    ),
  );

  const maxBinding = options.maxBinding ?? gpu.maxBinding;
  return {
    f16Products,
    forward(b, s) {
      const chunks = batchChunks(gpu, s, HS, maxBinding, elementBytes(type));
      return chunks.map((c) =>
        fwd.bind(c.grid, [c.btc(b.out), c.bht(b.lse), c.qkv(b.qkv)], c.params)
      );
    },
    backward(b, s) {
      const chunks = batchChunks(gpu, s, HS, maxBinding, elementBytes(type));
      // All dq passes (which write delta) come before the dk/dv passes that read it.
      return [
        ...chunks.map((c) =>
          dq.bind(c.grid, [
            c.qkv(b.dqkv),
            c.bht(b.delta),
            c.btc(b.dout),
            c.qkv(b.qkv),
            c.btc(b.out),
            c.bht(b.lse),
          ], c.params)
        ),
        ...chunks.map((c) =>
          dkdv.bind(c.grid, [
            c.qkv(b.dqkv),
            c.bht(b.delta),
            c.btc(b.dout),
            c.qkv(b.qkv),
            c.bht(b.lse),
          ], c.params)
        ),
      ];
    },
  };
}

function checkHeadSize(HS: number): void {
  if (!Number.isInteger(HS) || HS < 4 || HS > 128 || HS % 4 !== 0) {
    throw new RangeError(
      `attention: head size HS = C / NH = ${HS} is not supported (the kernels need a multiple ` +
        "of 4 from 4 to 128: rows are read as vec4 and kept in registers)",
    );
  }
}

/** A dispatch over a range of batch rows: its grid, params and how to slice each tensor. */
interface BatchChunk {
  grid: [number, number, number];
  params: Uint8Array<ArrayBuffer>;
  qkv(binding: Binding): Binding;
  btc(binding: Binding): Binding;
  bht(binding: Binding): Binding;
}

/**
 * Split the batch so that each dispatch's bindings fit in `maxBinding` (qkv is 151 MB at
 * B=16, T=1024, C=768, over lavapipe's 128 MiB). Every tensor is sliced to its exact size, so a
 * binding that is too small is reported here rather than read out of bounds.
 */
function batchChunks(
  gpu: Gpu,
  s: AttentionShape,
  HS: number,
  maxBinding: number,
  actBytes: number,
): BatchChunk[] {
  const { B, T, C, NH } = s;
  for (const [name, value] of Object.entries(s)) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(`attention: ${name} = ${value} must be a positive integer`);
    }
  }
  if (C !== NH * HS) {
    throw new RangeError(`attention: C = ${C} is not NH * HS = ${NH} * ${HS}`);
  }
  // Per batch row; qkv and the (B,T,C) tensors in activation storage, lse and delta in f32.
  const bytes = { qkv: T * 3 * C * actBytes, btc: T * C * actBytes, bht: NH * T * 4 };
  const perChunk = unitsPerPiece(
    {
      what: `attention: qkv of B=${B}, T=${T}, C=${C}`,
      unit: "batch rows",
      units: B,
      unitBytes: [bytes.qkv, bytes.btc, bytes.bht],
    },
    maxBinding,
    gpu.offsetAlignment,
  );
  const params = new ArrayBuffer(12);
  new Uint32Array(params, 0, 2).set([T, NH]);
  new Float32Array(params, 8, 1)[0] = 1 / Math.sqrt(HS);
  const chunks: BatchChunk[] = [];
  for (let b0 = 0; b0 < B; b0 += perChunk) {
    const n = Math.min(perChunk, B - b0);
    const slice = (per: number) => (binding: Binding) => subRange(binding, b0 * per, n * per);
    chunks.push({
      grid: [Math.ceil(T / ROWS), NH, n],
      params: new Uint8Array(params),
      qkv: slice(bytes.qkv),
      btc: slice(bytes.btc),
      bht: slice(bytes.bht),
    });
  }
  return chunks;
}

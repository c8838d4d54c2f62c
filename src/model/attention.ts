/**
 * Causal multi-head self-attention on the GPU, flash style (kernels/attention.wgsl).
 *
 * The forward keeps only the logsumexp of each query row (B, NH, T) instead of the (T, T)
 * attention matrix (805 MB at B=16, T=1024, NH=12); the backward recomputes the scores, in two
 * deterministic passes: dq over keys, then dk and dv over queries.
 *
 * Two kernel sets compute the same thing: `rows` (a thread per row, whole head rows in
 * registers; fastest on a CPU adapter) and `tiled` (FlashAttention-2 register tiles that fit a
 * GPU's register budget; see kernels/attention_tiled.wgsl). The adapter picks by default.
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
import { type AttentionKernel, attentionTiles } from "./attention_tiles.ts";
import common from "../../kernels/attention.wgsl" with { type: "text" };
import rowsSource from "../../kernels/attention_rows.wgsl" with { type: "text" };
import tiledSource from "../../kernels/attention_tiled.wgsl" with { type: "text" };

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
  /** The kernel set in use (see {@link AttentionOptions}). */
  readonly kernels: AttentionKernels;
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

/** Rows (queries or keys) per workgroup of the `rows` kernels, one invocation each. */
const ROWS = 64;

/** The kernel sets: a thread per row, or FlashAttention-2 register tiles. */
export type AttentionKernels = "rows" | "tiled";

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
  /**
   * Kernel set (default `rows` on a software adapter, where it is faster, `tiled` on a GPU).
   */
  kernels?: AttentionKernels;
  /** Workgroup memory the `tiled` kernels may use (default the device's; tests pass less). */
  maxWorkgroupBytes?: number;
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
  const kernels = options.kernels ?? (gpu.isFallback ? "rows" : "tiled");
  // Each kernel with its rows per workgroup (the grid's x) and its specialized source.
  const variants = (["forward", "dq", "dkdv"] as AttentionKernel[]).map((kernel): {
    kernel: AttentionKernel;
    rows: number;
    code: string;
    values: Record<string, number>;
  } => {
    if (kernels === "rows") return { kernel, rows: ROWS, code: rowsSource, values: { ROWS } };
    const limit = options.maxWorkgroupBytes ?? gpu.device.limits.maxComputeWorkgroupStorageSize;
    const tiles = attentionTiles(kernel, HS, f16Products ? 2 : 4, limit);
    return { kernel, rows: tiles.RM * tiles.TY, code: tiledSource, values: { ...tiles } };
  });
  const [fwd, dq, dkdv] = await Promise.all(variants.map((v) => {
    const values = { HS, ...v.values, ...(f16Products ? { FLUSH4: 4 } : {}) };
    const wgsl = specializeWgsl(
      `${common}\n${v.code}`,
      values,
      f16Products ? { dot_t: "f16" } : {},
    );
    const entryPoint = v.kernel === "forward"
      ? "attention_forward"
      : `attention_backward_${v.kernel}`;
    return Kernel.create(gpu, {
      label: `${entryPoint} (${kernels}, HS ${HS}${f16Products ? ", f16 products" : ""})`,
      code: specializeStorage(wgsl, storageArrays(type)),
      entryPoint,
    });
  }));
  const [fwdRows, dqRows, dkdvRows] = variants.map((v) => v.rows);

  const maxBinding = options.maxBinding ?? gpu.maxBinding;
  return {
    f16Products,
    kernels,
    forward(b, s) {
      const chunks = batchChunks(gpu, s, HS, maxBinding, elementBytes(type));
      return chunks.map((c) =>
        fwd.bind(c.grid(fwdRows), [c.btc(b.out), c.bht(b.lse), c.qkv(b.qkv)], c.params)
      );
    },
    backward(b, s) {
      const chunks = batchChunks(gpu, s, HS, maxBinding, elementBytes(type));
      // All dq passes (which write delta) come before the dk/dv passes that read it.
      return [
        ...chunks.map((c) =>
          dq.bind(c.grid(dqRows), [
            c.qkv(b.dqkv),
            c.bht(b.delta),
            c.btc(b.dout),
            c.qkv(b.qkv),
            c.btc(b.out),
            c.bht(b.lse),
          ], c.params)
        ),
        ...chunks.map((c) =>
          dkdv.bind(c.grid(dkdvRows), [
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

/** Storage type of each array the kernels read or write through accessors. */
function storageArrays(type: StorageType): Record<string, StorageType> {
  return Object.fromEntries(
    ["out_w", "qkv_f", "dqkv", "dout", "qkv", "out_r"].map((n) => [n, type]),
  );
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
  /** The grid of a kernel with `rows` rows per workgroup. */
  grid(rows: number): [number, number, number];
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
      grid: (rows) => [Math.ceil(T / rows), NH, n],
      params: new Uint8Array(params),
      qkv: slice(bytes.qkv),
      btc: slice(bytes.btc),
      bht: slice(bytes.bht),
    });
  }
  return chunks;
}

/**
 * Token + position embedding dispatch: out (B,T,C) = wte[tokens] + wpe[t].
 *
 * wte (V,C) can exceed one storage binding (GPT-2's 50,304 x 768 f32 is 154 MB, over lavapipe's
 * 128 MiB): it is bound in ranges of whole rows, one dispatch per range.
 *
 * The dwte backward is deterministic without float atomics thanks to a token index built on
 * the CPU with each batch ({@link buildTokenIndex}; the loader has the tokens anyway) and
 * uploaded next to the tokens: each token's positions are summed in position order.
 */
import type { Gpu } from "../gpu/device.ts";
import { asRange, type Binding, subRange } from "../gpu/buffer.ts";
import { unitsPerPiece } from "../gpu/window.ts";
import { type Dispatch, grid, Kernel } from "../gpu/kernel.ts";
import { elementBytes, specializeStorage, type StorageType } from "../gpu/storage.ts";
import source from "../../kernels/embedding.wgsl" with { type: "text" };

/** Shapes: B sequences of T tokens, C channels, V rows in wte (the padded vocabulary Vp). */
export interface EmbeddingShape {
  B: number;
  T: number;
  C: number;
  V: number;
}

/** Prepared embedding dispatches. */
export interface EmbeddingOp {
  /** out (B,T,C) = wte (V,C)[tokens (B,T) u32] + wpe (maxT,C)[t], overwrite. */
  forward(
    b: { out: Binding; tokens: Binding; wte: Binding; wpe: Binding },
    s: EmbeddingShape,
  ): Dispatch[];
  /**
   * dwte (V,C) += and dwpe (maxT,C) += from dout (B,T,C). `index` holds
   * `buildTokenIndex(tokens, V)` of the same batch (u32, {@link tokenIndexLength}(B*T) entries).
   */
  backward(
    b: { dwte: Binding; dwpe: Binding; dout: Binding; tokens: Binding; index: Binding },
    s: EmbeddingShape,
  ): Dispatch[];
}

/** Options for {@link createEmbedding}. */
export interface EmbeddingOptions {
  /** Largest byte size of one wte binding (default `gpu.maxBinding`; tests make it small). */
  maxBinding?: number;
  /** Storage of out, wte, wpe and dout (default f32); dwte and dwpe are f32. */
  type?: StorageType;
  /** Storage of out when it differs from `type` (an f16 model's f32 residual stream). */
  outType?: StorageType;
}

/** Compile the embedding kernels. */
export async function createEmbedding(
  gpu: Gpu,
  options: EmbeddingOptions = {},
): Promise<EmbeddingOp> {
  const type = options.type ?? "f32";
  const code = specializeStorage(
    source,
    {
      ...Object.fromEntries(["wte", "wpe", "wpe_dout", "dout"].map((name) => [name, type])),
      out: options.outType ?? type,
    },
  );
  const [fwd, bwdWpe, bwdWte] = await Promise.all(
    ["embedding_forward", "embedding_backward_wpe", "embedding_backward_wte"].map((entryPoint) =>
      Kernel.create(gpu, { label: entryPoint, code, entryPoint })
    ),
  );
  const maxBinding = options.maxBinding ?? gpu.maxBinding;
  return {
    forward(b, s) {
      const N = s.B * s.T;
      return rowRanges(gpu, b.wte, s, maxBinding, elementBytes(type)).map(({ v0, v1, rows }) =>
        fwd.bind(grid(Math.ceil(N * s.C / 64)), [b.out, b.tokens, rows, b.wpe], params(s, v0, v1))
      );
    },
    backward(b, s) {
      const N = s.B * s.T;
      return [
        bwdWpe.bind(grid(Math.ceil(s.T * s.C / 64)), [b.dwpe, b.dout], params(s, 0, 0)),
        ...rowRanges(gpu, b.dwte, s, maxBinding, 4).map(({ v0, v1, rows }) =>
          bwdWte.bind(grid(N), [rows, b.index, b.tokens, b.dout], params(s, v0, v1))
        ),
      ];
    },
  };
}

function params(s: EmbeddingShape, v0: number, v1: number): Uint32Array<ArrayBuffer> {
  return new Uint32Array([s.B, s.T, s.C, v0, v1]);
}

/**
 * wte's rows (elements of `bytes`) split into bindings of at most `maxBinding` bytes, each at an
 * aligned offset.
 */
function rowRanges(
  gpu: Gpu,
  wte: Binding,
  s: EmbeddingShape,
  maxBinding: number,
  bytes: number,
): { v0: number; v1: number; rows: Binding }[] {
  const rowBytes = s.C * bytes;
  const size = asRange(wte).size;
  if (size < s.V * rowBytes) {
    throw new RangeError(
      `embedding: wte binding of ${size} bytes is smaller than V=${s.V} rows of C=${s.C}`,
    );
  }
  const perRange = unitsPerPiece(
    {
      what: `embedding: wte of V=${s.V}, C=${s.C}`,
      unit: "rows",
      units: s.V,
      unitBytes: [rowBytes],
    },
    maxBinding,
    gpu.offsetAlignment,
  );
  const ranges = [];
  for (let v0 = 0; v0 < s.V; v0 += perRange) {
    const v1 = Math.min(s.V, v0 + perRange);
    ranges.push({ v0, v1, rows: subRange(wte, v0 * rowBytes, (v1 - v0) * rowBytes) });
  }
  return ranges;
}

/** Entries of the token index for N = B*T positions. */
export function tokenIndexLength(N: number): number {
  return 2 * N + 2;
}

/**
 * The dwte token index of a batch (layout in kernels/embedding.wgsl): the positions of
 * `tokens` (B*T, row-major) grouped by token, each group in position order. Throws on a
 * token outside [0, V).
 */
export function buildTokenIndex(tokens: ArrayLike<number>, V: number): Uint32Array<ArrayBuffer> {
  const N = tokens.length;
  const order = new Uint32Array(N);
  for (let i = 0; i < N; i++) {
    const token = tokens[i];
    if (!(Number.isInteger(token) && token >= 0 && token < V)) {
      throw new RangeError(`embedding: token ${token} at position ${i} is outside [0, ${V})`);
    }
    order[i] = i;
  }
  order.sort((a, b) => tokens[a] - tokens[b] || a - b);
  const index = new Uint32Array(tokenIndexLength(N));
  let groups = 0;
  for (let k = 0; k < N; k++) {
    if (k === 0 || tokens[order[k]] !== tokens[order[k - 1]]) index[1 + groups++] = k;
  }
  index[0] = groups;
  index[1 + groups] = N;
  index.set(order, N + 2);
  return index;
}

/**
 * The matmul op's interface (src/model/matmul.ts): its options, the operand types and layouts a
 * general product takes, the bindings of the linear layers' forward and backward, and the op.
 */
import type { AutotuneMode } from "../gpu/device.ts";
import type { Binding } from "../gpu/buffer.ts";
import type { Dispatch } from "../gpu/kernel.ts";
import type { StorageType } from "../gpu/storage.ts";
import type { MatmulTiles } from "./matmul_tiles.ts";

/** How one product is computed: the tile variant and the number of K slices (split-K). */
export interface MatmulConfig {
  tiles: MatmulTiles;
  /** Slices of K computed in parallel and summed in order (1: none; see matmul_split_k.ts). */
  splitK: number;
}

/** Options for {@link createMatmul}. */
export interface MatmulOptions {
  /** Tile configuration of every product (default: per product, see `autotune`). */
  tiles?: MatmulTiles;
  /**
   * K slices of every product (default: per product, {@link defaultSplitK} or tuned); fewer
   * where K or the scratch is too small.
   */
  splitK?: number;
  /**
   * How products without `tiles` and `splitK` choose theirs (default `gpu.autotune`, which is
   * "off" unless a command set it): see src/model/matmul_autotune.ts.
   */
  autotune?: AutotuneMode;
  /** Where autotuning reports its choices and a bad cache file (default console.error). */
  log?: (line: string) => void;
  /** Largest byte size bound per operand (default `gpu.maxBinding`; tests pass less). */
  maxBinding?: number;
  /**
   * Storage of activations and weights (default f32): forward and dinp read and write it,
   * dweight and dbias read it and accumulate into f32 gradients.
   */
  type?: StorageType;
  /**
   * Multiply two f16 operands in f16 when the device has `shader-f16` (default true); false
   * keeps f32 arithmetic (f16 as a storage format only, for comparisons).
   */
  f16Products?: boolean;
}

/** Storage types of a product's operands; a bias has b's type (both are parameters). */
export interface GemmTypes {
  a: StorageType;
  b: StorageType;
  c: StorageType;
}

export const F32_GEMM: GemmTypes = { a: "f32", b: "f32", c: "f32" };

/**
 * The type combinations a model stored as `type` uses: its linear layers (forward and dinp all
 * `type`, dweight into f32) and the classifier (f32 logits from `type` rows and wte, dx from
 * f32 dlogits, dwte into f32).
 */
export function gemmTypeSets(type: StorageType): GemmTypes[] {
  if (type === "f32") return [F32_GEMM];
  return [
    { a: type, b: type, c: type },
    { a: type, b: type, c: "f32" },
    { a: "f32", b: type, c: type },
    { a: "f32", b: type, c: "f32" },
  ];
}

export function typesKey(t: GemmTypes): string {
  return `[${t.a},${t.b},${t.c}]`;
}

/** Storage layout of `a` and `b` in {@link GemmDesc}. */
export type ALayout = "mk" | "km";
export type BLayout = "kn" | "nk";

/**
 * c (M, N) [=|+=] op(a) @ op(b) [+ bias (N)], all f32 row-major.
 * `aLayout` "mk": a stored (M, K); "km": a stored (K, M) (the product uses its transpose).
 * `bLayout` "kn": b stored (K, N); "nk": b stored (N, K).
 * Leading dimensions (elements between rows as stored) default to the packed row length;
 * offsets are element offsets into the bindings.
 */
export interface GemmDesc {
  c: Binding;
  a: Binding;
  b: Binding;
  bias?: Binding | null;
  M: number;
  N: number;
  K: number;
  aLayout: ALayout;
  bLayout: BLayout;
  lda?: number;
  ldb?: number;
  ldc?: number;
  aOffset?: number;
  bOffset?: number;
  cOffset?: number;
  biasOffset?: number;
  /** true: c += product; false (default): c = product. */
  accumulate?: boolean;
  /** Storage of a, b (and bias) and c (default all f32); one of the op's compiled sets. */
  types?: GemmTypes;
  /** Names the product in errors, e.g. "lm_head forward". */
  label?: string;
}

/** What identifies a product for tuning: its shape, layouts and types. */
export type GemmProduct = Pick<
  GemmDesc,
  "M" | "N" | "K" | "aLayout" | "bLayout" | "types" | "label"
>;

/** Bindings of {@link MatmulOp.forward}. */
export interface MatmulForwardBindings {
  /** (N, OC), overwritten. */
  out: Binding;
  /** (N, C). */
  inp: Binding;
  /** (OC, C), like nn.Linear. */
  weight: Binding;
  /** (OC), or null for none. */
  bias: Binding | null;
}

/** Bindings of {@link MatmulOp.backward}; a null gradient is not computed. */
export interface MatmulBackwardBindings {
  /** (N, C): = dout @ weight, or += with `accumulateDinp`. */
  dinp: Binding | null;
  /** (OC, C): += dout^T @ inp. */
  dweight: Binding | null;
  /** (OC): += sum over rows of dout. */
  dbias: Binding | null;
  /** (N, OC). */
  dout: Binding;
  /** (N, C). */
  inp: Binding;
  /** (OC, C). */
  weight: Binding;
}

/** Shape of a linear layer in llm.c's names: N rows (B*T), C inputs, OC outputs. */
export interface MatmulShape {
  N: number;
  C: number;
  OC: number;
}

/** Prepared dispatches for matrix products; see {@link createMatmul}. */
export interface MatmulOp {
  readonly tiles: MatmulTiles;
  /** Storage of activations and weights (gradients of weights are f32). */
  readonly type: StorageType;
  /** Whether products of two f16 operands compute in f16 (see {@link MatmulOptions}). */
  readonly f16Products: boolean;
  /** out (N, OC) = inp (N, C) @ weight^T + bias. */
  forward(b: MatmulForwardBindings, s: MatmulShape): Dispatch[];
  /**
   * dinp (N, C) = dout (N, OC) @ weight (OC, C) (+= when `accumulateDinp`);
   * dweight (OC, C) += dout^T @ inp; dbias (OC) += column sums of dout.
   */
  backward(b: MatmulBackwardBindings, s: MatmulShape & { accumulateDinp?: boolean }): Dispatch[];
  /** The general product, with {@link configFor}'s configuration. */
  gemm(d: GemmDesc): Dispatch[];
  /** The configuration {@link gemm} uses for a product now. */
  configFor(p: GemmProduct): MatmulConfig;
  /** Products {@link gemm} was asked for that autotuning has not decided yet (none when off). */
  pending(): GemmProduct[];
  /**
   * Decides `products` (default {@link pending}): from the cache, or by timing the candidates
   * ("refresh" always times). True when a decision changed what {@link gemm} returns, so that
   * dispatch lists recorded before should be recorded again. Does nothing when off.
   */
  tune(products?: GemmProduct[]): Promise<boolean>;
  /** dbias (OC) += sum over the N rows of dout (N, OC), in a fixed order. */
  biasBackward(b: { dbias: Binding; dout: Binding }, s: { N: number; OC: number }): Dispatch[];
  /** Frees the op's own buffers (the prepared dispatches free their params themselves). */
  destroy(): void;
}

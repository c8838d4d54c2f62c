/**
 * Training precision: how a model stores its activations, their gradients and its working copy
 * of the weights. Arithmetic is f32 in every kernel; master weights, parameter gradients and
 * AdamW's moments stay f32 in every precision, so checkpoints and exports are f32 and a run can
 * resume in any precision.
 *
 *   f32   everything f32.
 *   bf16  bf16 storage packed two per u32 (src/gpu/storage.ts), rounded to nearest even; no
 *         loss scaling (bf16 has f32's exponent range).
 *   f16   IEEE f16 storage packed two per u32 like bf16 (arithmetic f32, so any device); its
 *         narrow range needs dynamic loss scaling, decided on the GPU (optim/grad_norm.ts).
 */
import type { StorageType } from "../gpu/storage.ts";

/** The precisions `--precision` accepts. */
export const PRECISIONS = ["f32", "bf16", "f16"] as const;

/** One of {@link PRECISIONS}. */
export type Precision = typeof PRECISIONS[number];

/**
 * The storage type of activations, activation gradients and the weight copy for `precision`;
 * throws, naming the value, for one that is not a precision.
 */
export function activationStorage(precision: Precision): StorageType {
  switch (precision) {
    case "f32":
    case "bf16":
    case "f16":
      return precision;
    default:
      throw new Error(`precision "${precision}": must be one of ${PRECISIONS.join(", ")}`);
  }
}

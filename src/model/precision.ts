/**
 * Training precision: how a model stores its activations, their gradients and its working copy
 * of the weights. Arithmetic is f32 in every kernel; master weights, parameter gradients and
 * AdamW's moments stay f32 in every precision, so checkpoints and exports are f32 and a run can
 * resume in any precision.
 *
 *   f32   everything f32.
 *   bf16  bf16 storage packed two per u32 (src/gpu/storage.ts), rounded to nearest even; no
 *         loss scaling (bf16 has f32's exponent range).
 *   f16   WGSL's f16 on devices with `shader-f16`, with dynamic loss scaling: not built yet.
 */
import type { Gpu } from "../gpu/device.ts";
import type { StorageType } from "../gpu/storage.ts";

/** The precisions `--precision` accepts. */
export const PRECISIONS = ["f32", "bf16", "f16"] as const;

/** One of {@link PRECISIONS}. */
export type Precision = typeof PRECISIONS[number];

/**
 * The storage type of activations, activation gradients and the weight copy for `precision` on
 * `gpu`; throws, naming the precision and the reason, when the device or this build cannot
 * train in it.
 */
export function activationStorage(gpu: Gpu, precision: Precision): StorageType {
  switch (precision) {
    case "f32":
    case "bf16":
      return precision;
    case "f16":
      if (!gpu.hasF16) {
        throw new Error(
          `precision f16: the device "${gpu.name}" has no shader-f16 feature; use bf16 or f32`,
        );
      }
      throw new Error("precision f16: f16 kernels and loss scaling are not built yet; use bf16");
    default:
      throw new Error(`precision "${precision}": must be one of ${PRECISIONS.join(", ")}`);
  }
}

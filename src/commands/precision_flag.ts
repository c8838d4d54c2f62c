/** `--precision`, shared by the commands that build a model (`eval`, `sample`). */
import { PRECISIONS } from "../model/precision.ts";

/** The `--precision` flag spec (train's comes from the run-option table). */
export const PRECISION_FLAG = {
  type: "string",
  choices: PRECISIONS,
  default: "f32",
  help: "storage of activations and the weight copy (f32, bf16, f16)",
} as const;

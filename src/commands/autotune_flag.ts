/**
 * `--autotune`, shared by the commands that build a model or matmul ops (`eval`, `sample`,
 * `bench`): the choices and help of train's option (src/train/options.ts), each command with
 * its own default.
 */
import type { AutotuneMode } from "../gpu/device.ts";
import { TRAIN_OPTIONS } from "../train/options.ts";
import { UsageError } from "./flags.ts";

const { choices, help } = TRAIN_OPTIONS.autotune;

/** The `--autotune` flag spec without a default (the command says which in `defaultText`). */
export const AUTOTUNE_FLAG = { type: "string", choices, help } as const;

/** The `--autotune` flag spec with `defaultMode` as its default. */
export function autotuneFlag(defaultMode: AutotuneMode) {
  return { ...AUTOTUNE_FLAG, default: defaultMode } as const;
}

/**
 * `value` as a mode, for the benchmarks that parse with `node:util` (the others' parseFlags
 * checks the choices): a {@link UsageError} naming the flag when it is not one.
 */
export function autotuneMode(value: string): AutotuneMode {
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`--autotune: "${value}" is not one of ${choices.join(", ")}`);
  }
  return value as AutotuneMode;
}

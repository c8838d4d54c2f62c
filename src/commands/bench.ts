/**
 * `deno task bench <name> [flags]`: benchmarks print what they measured, never pass/fail.
 *
 *   tokenizer   WASM tokenizer vs tiktoken and js-tiktoken, then prepare at 1 and 2 workers
 *   prepare     prepare throughput at 1 and 2 workers
 *   kernels     matmul GFLOP/s at GPT-2 shapes vs a one-thread-per-output kernel, and MFU
 *   model       GPT-2 train micro-step, eval forward and optimizer step times, tokens/s, MFU
 *   allreduce   ring all-reduce bus bandwidth vs raw Unix-socket throughput
 *   checkpoint  save and load time of a full GPT-2 124M checkpoint
 *   gpu         one call on a GPU: adapter, FMA and copy ceilings, every matmul, attention and
 *               the other ops, the training micro-step per precision, PyTorch's where it runs
 */
import { UsageError } from "./flags.ts";

/** Each bench module exports `main(args)`. Literal imports, so `deno compile` embeds them. */
type Bench = () => Promise<{ main(args: string[]): Promise<void> }>;
const BENCHES: Record<string, Bench[]> = {
  tokenizer: [() => import("./bench/tokenizer.ts"), () => import("./bench/prepare.ts")],
  prepare: [() => import("./bench/prepare.ts")],
  kernels: [() => import("./bench/kernels.ts"), () => import("./bench/model.ts")],
  model: [() => import("./bench/model.ts")],
  allreduce: [() => import("./bench/allreduce.ts")],
  checkpoint: [() => import("./bench/checkpoint.ts")],
  gpu: [() => import("./bench/gpu.ts")],
};

/** Run the benchmark named by `args[0]` with the remaining flags. */
export async function benchMain(args: string[]): Promise<void> {
  const [name, ...rest] = args;
  const benches = BENCHES[name];
  if (!benches) {
    throw new UsageError(
      `${name ? `unknown benchmark "${name}"; ` : ""}usage: deno task bench <` +
        `${Object.keys(BENCHES).join("|")}> [flags]`,
    );
  }
  for (const load of benches) await (await load()).main(rest);
}

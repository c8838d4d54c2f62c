/**
 * `deno task bench <name> [flags]`: benchmarks print what they measured, never pass/fail.
 *
 *   tokenizer   WASM tokenizer vs tiktoken and js-tiktoken, then prepare at 1 and 2 workers
 *   prepare     prepare throughput at 1 and 2 workers
 *   kernels     matmul GFLOP/s at GPT-2 shapes, forward+backward step time and MFU
 *   allreduce   ring all-reduce bus bandwidth vs raw Unix-socket throughput
 *   checkpoint  save and load time of a full GPT-2 124M checkpoint
 */
const BENCHES: Record<string, string[]> = {
  tokenizer: ["./bench/tokenizer.ts", "./bench/prepare.ts"],
  prepare: ["./bench/prepare.ts"],
  kernels: ["./bench/kernels.ts"],
  allreduce: ["./bench/allreduce.ts"],
  checkpoint: ["./bench/checkpoint.ts"],
};

/** Each bench module exports `main(args)`. */
interface BenchModule {
  main(args: string[]): Promise<void>;
}

if (import.meta.main) {
  const [name, ...args] = Deno.args;
  const modules = BENCHES[name];
  if (!modules) {
    console.error(`usage: deno task bench <${Object.keys(BENCHES).join("|")}> [flags]`);
    if (name) console.error(`unknown benchmark "${name}"`);
    Deno.exit(2);
  }
  for (const path of modules) {
    const bench: BenchModule = await import(path);
    await bench.main(args);
  }
}

/**
 * The `repgpt` executable (`deno task compile` builds it): one binary for every rank and
 * every job. `repgpt <command> [flags]`; `repgpt <command> --help` lists a command's flags.
 */
import { runMain, UsageError } from "./flags.ts";

/** Each command loads its module on demand, so `repgpt prepare` never touches WebGPU. */
const COMMANDS: Record<string, { help: string; run: (args: string[]) => Promise<unknown> }> = {
  train: {
    help: "train GPT-2 (the seed recipe on a GPU; --nproc N for N ranks)",
    run: async (args) => (await import("./train.ts")).trainMain(args),
  },
  prepare: {
    help: "tokenize text into llm.c shards (default: the embedded WordNet corpus)",
    run: async (args) => (await import("./prepare.ts")).prepareMain(args),
  },
  eval: {
    help: "mean val loss of a model; last line is JSON",
    run: async (args) => (await import("./eval.ts")).evalMain(args),
  },
  sample: {
    help: "generate text from a checkpoint or a Hugging Face dir",
    run: async (args) => (await import("./sample.ts")).sampleMain(args),
  },
  export: {
    help: "write a model out as a Hugging Face folder or an llm.c model file",
    run: async (args) => (await import("./export.ts")).exportMain(args),
  },
  dashboard: {
    help: "live charts of run folders on 127.0.0.1",
    run: async (args) => (await import("./dashboard.ts")).dashboardMain(args),
  },
  plot: {
    help: "the loss chart of runs as an SVG",
    run: async (args) => (await import("./plot.ts")).plotMain(args),
  },
  bench: {
    help: "benchmarks: tokenizer, prepare, kernels, model, allreduce, checkpoint",
    run: async (args) => (await import("./bench.ts")).benchMain(args),
  },
};

/** Usage text listing the commands. */
export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length)) + 2;
  return [
    "usage: repgpt <command> [flags]",
    "",
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}${c.help}`),
    "",
    "repgpt <command> --help lists the command's flags.",
  ].join("\n");
}

/** Dispatch `args` (`[command, ...flags]`) to a command. */
export async function main(args: string[]): Promise<void> {
  const [command, ...rest] = args;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    console.log(usage());
    return;
  }
  const entry = COMMANDS[command];
  if (!entry) throw new UsageError(`unknown command "${command}"\n${usage()}`);
  await entry.run(rest);
}

if (import.meta.main) await runMain(() => main(Deno.args));

/**
 * `deno task compile`: builds `dist/repgpt`, one executable for every rank and command, with
 * the WGSL kernels, the WASM tokenizer and the GPT-2 vocabulary embedded through imports.
 * Worker entry points are not reachable by static imports, so they are named with --include.
 *
 * `deno compile` downloads its `denort` runtime on first use; on a machine that cannot reach
 * dl.deno.land that download is the one step that fails (the message says so).
 */
const WORKERS = ["src/data/_prepare_worker.ts", "src/distributed/_ring_worker.ts"];

/** The `deno compile` command line for `target` (default: this machine). */
export function compileArgs(output = "dist/repgpt", target?: string): string[] {
  return [
    "compile",
    "-A",
    ...WORKERS.flatMap((w) => ["--include", w]),
    ...(target ? ["--target", target] : []),
    "--output",
    output,
    "src/commands/main.ts",
  ];
}

if (import.meta.main) {
  const target = Deno.args.find((a) => a.startsWith("--target="))?.slice("--target=".length);
  const args = compileArgs("dist/repgpt", target);
  console.log(`deno ${args.join(" ")}`);
  const { code } = await new Deno.Command(Deno.execPath(), { args }).spawn().status;
  if (code !== 0) {
    console.error(
      "deno compile failed. If the error is about downloading denort, this machine cannot " +
        "reach dl.deno.land: run `deno task compile` where it can (or set DENORT_BIN to a " +
        "denort binary of the same Deno version).",
    );
  }
  Deno.exit(code);
}

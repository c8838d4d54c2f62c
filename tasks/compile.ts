/**
 * `deno task compile`: builds `dist/repgpt`, one executable for every rank and command, with
 * the WGSL kernels, the WASM tokenizer and the GPT-2 vocabulary embedded through imports.
 * Worker entry points are not reachable by static imports, so they are named with --include:
 * by convention every Worker module under src/ is named `_NAME_worker.ts` (tests/cli_test.ts checks
 * that each `new Worker`/`WorkerChannel` URL follows it).
 *
 * `deno compile` downloads its `denort` runtime on first use; on a machine that cannot reach
 * dl.deno.land that download is the one step that fails (the message says so).
 */
/** Every Worker entry point under src/ (`_*_worker.ts`), relative to the repository root. */
export function workerModules(root = new URL("..", import.meta.url).pathname): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(`${root}/${dir}`)) {
      if (e.isDirectory) walk(`${dir}/${e.name}`);
      else if (/^_.*_worker\.ts$/.test(e.name)) found.push(`${dir}/${e.name}`);
    }
  };
  walk("src");
  return found.sort();
}

/** The `deno compile` command line for `target` (default: this machine). */
export function compileArgs(output = "dist/repgpt", target?: string): string[] {
  return [
    "compile",
    "-A",
    ...workerModules().flatMap((w) => ["--include", w]),
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

/**
 * The `repgpt` entry point and `deno task compile`, exercised as real processes. Here
 * `deno compile` cannot download its denort runtime; the test checks that everything before
 * that download (module graph, npm packages, embedded WGSL/WASM, workers) succeeds.
 */
import { assert, assertEquals } from "./_assert.ts";
import { compileArgs, workerModules } from "../tasks/compile.ts";

const MAIN = new URL("../src/commands/main.ts", import.meta.url).pathname;

async function run(args: string[], cwd?: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("cli: every command answers --help with its flags", async () => {
  const top = await run(["run", "-A", MAIN, "--help"]);
  assertEquals(top.code, 0);
  for (
    const [command, flag] of [
      ["train", "--total-batch-tokens"],
      ["prepare", "--shard-tokens"],
      ["eval", "--eval-steps"],
      ["sample", "--top-k"],
    ]
  ) {
    assert(top.stdout.includes(command), `usage lists ${command}`);
    const r = await run(["run", "-A", MAIN, command, "--help"]);
    assertEquals(r.code, 0, `${command} --help: ${r.stderr}`);
    assert(r.stdout.includes(flag), `${command} --help lists ${flag}:\n${r.stdout}`);
  }
});

Deno.test("cli: unknown commands and flags are usage errors (exit 2)", async () => {
  const r = await run(["run", "-A", MAIN, "trian"]);
  assertEquals(r.code, 2);
  assert(r.stderr.includes('unknown command "trian"'), r.stderr);
  const f = await run(["run", "-A", MAIN, "train", "--max-step", "3"]);
  assertEquals(f.code, 2);
  assert(f.stderr.includes("--max-step"), f.stderr);
  const s = await run(["run", "-A", MAIN, "sample", "--tokens", "3"]);
  assertEquals(s.code, 2);
  assert(s.stderr.includes("--from is required"), s.stderr);
  const m = await run(["run", "-A", MAIN, "train", "--model", "gpt3"]);
  assertEquals(m.code, 2);
  assert(m.stderr.includes('--model: "gpt3" is not one of gpt2,'), m.stderr);
});

Deno.test("cli: every Worker entry point is a _*_worker.ts module that compile includes", () => {
  const root = new URL("..", import.meta.url).pathname;
  const included = workerModules(root);
  const spawned: string[] = [];
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(`${root}/${dir}`)) {
      if (e.isDirectory) walk(`${dir}/${e.name}`);
      else if (e.name.endsWith(".ts")) {
        const text = Deno.readTextFileSync(`${root}/${dir}/${e.name}`);
        for (const m of text.matchAll(/new (?:Worker|WorkerChannel)\(\s*new URL\("\.\/([^"]+)"/g)) {
          spawned.push(`${dir}/${m[1]}`);
        }
      }
    }
  };
  walk("src");
  assert(spawned.length >= 3, `found ${spawned}`);
  for (const w of spawned) assert(included.includes(w), `${w} is not included by compile`);
});

Deno.test("cli: deno compile builds the whole graph (denort download is the only gap)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const root = new URL("..", import.meta.url).pathname;
    const r = await run(compileArgs(`${dir}/repgpt`), root);
    const log = r.stdout + r.stderr;
    if (r.code === 0) {
      const help = await new Deno.Command(`${dir}/repgpt`, { args: ["--help"] }).output();
      assertEquals(help.code, 0);
    } else {
      assert(
        /Download\s+https:\/\/dl\.deno\.land\/.*denort/.test(log),
        `compile failed early:\n${log}`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

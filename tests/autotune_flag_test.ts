/**
 * `--autotune` on the commands other than train (src/commands/autotune_flag.ts), as real
 * processes: a bad mode is a usage error naming the flag on each, and `sample` takes its mode
 * (default cached) to the model's matmuls, which then read the cache file.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { presetConfig } from "../src/model/config.ts";
import { saveHf } from "../src/model/hf.ts";
import { paramLayout } from "../src/model/params.ts";

const ROOT = new URL("..", import.meta.url).pathname;

async function run(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("--autotune bogus: exit 2 naming the flag and the choices (eval, sample, bench)", async () => {
  const commands = [
    ["tasks/eval.ts", "--init-from", "nowhere", "--data", "nowhere"],
    ["tasks/sample.ts", "--from", "nowhere"],
    ["tasks/bench.ts", "model"],
    ["tasks/bench.ts", "kernels"],
    ["tasks/bench.ts", "gpu", "--smoke"],
  ];
  for (const command of commands) {
    const r = await run([...command, "--autotune", "bogus"]);
    const what = `${command.join(" ")}: exit ${r.code}\n${r.stderr}`;
    assertEquals(r.code, 2, what);
    assert(r.stderr.includes('--autotune: "bogus" is not one of off, cached, refresh'), what);
  }
  const help = await run(["tasks/eval.ts", "--help"]);
  assert(/--autotune S +matmul configurations .*\(default cached\)/.test(help.stdout), help.stdout);
});

Deno.test("sample: its --autotune mode (default cached) reaches the model's matmuls", async () => {
  const dir = await Deno.makeTempDir({ prefix: "autotune_flag_" });
  try {
    const config = presetConfig("tiny");
    const model = join(dir, "model");
    await saveHf(model, config, new Float32Array(paramLayout(config).totalFloats));
    // A corrupt cache: "cached" reports it by name as the matmuls open it ("off" never reads
    // it: tests/matmul_autotune_test.ts).
    const cache = join(dir, "cache");
    await Deno.mkdir(cache);
    const file = join(cache, "matmul_autotune.json");
    await Deno.writeTextFile(file, "{");
    const r = await run(["tasks/sample.ts", "--from", model, "--tokens", "1"], {
      REPGPT_CACHE_DIR: cache,
    });
    assertEquals(r.code, 0, r.stderr);
    assert(r.stderr.includes(`matmul autotune: ignoring the cache ${file}: not JSON`), r.stderr);
    // The model's products were timed and the file replaced with their choices.
    assert(r.stderr.includes("matmul autotune: "), r.stderr);
    const entries = JSON.parse(await Deno.readTextFile(file)).entries;
    assert(Object.keys(entries).length > 0, JSON.stringify(entries));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * The held-out float64 numpy GPT-2 (tests/reference/gpt2_numpy.py) as a test oracle: Hugging
 * Face semantics, written independently of repgpt's TypeScript. PyTorch is not installable on
 * these machines (no PyPI); numpy is.
 */
import { join } from "node:path";

export const NUMPY_SCRIPT = new URL("./reference/gpt2_numpy.py", import.meta.url).pathname;

/** Run a command, capturing its output. */
export async function run(
  cmd: string,
  args: string[],
): Promise<{ code: number; out: string; err: string }> {
  const { code, stdout, stderr } = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout), err: dec.decode(stderr) };
}

/** Run the numpy reference with `args`; its stdout. */
export async function python(args: string[]): Promise<string> {
  const { code, out, err } = await run("python3", [NUMPY_SCRIPT, ...args]);
  if (code !== 0) throw new Error(`gpt2_numpy.py ${args.join(" ")} failed (${code}):\n${err}`);
  return out;
}

/** Whether python3 with numpy is here; says loudly when it is not (the tests are skipped). */
export async function hasNumpy(testFile: string): Promise<boolean> {
  const ok = await run("python3", ["-c", "import numpy"]).then((r) => r.code === 0, () => false);
  if (!ok) {
    console.error(
      `\n*** ${testFile}: SKIPPED: python3 with numpy is not available; the held-out numpy ` +
        "GPT-2 reference cannot run ***\n",
    );
  }
  return ok;
}

/** A random HF model (tanh or erf GELU) and random train/val shards, in a temp dir. */
export async function numpyFixture(
  activation: "gelu_new" | "gelu",
  tokens = 2048,
): Promise<{ dir: string; model: string; data: string }> {
  const dir = await Deno.makeTempDir({ prefix: "repgpt_numpy_" });
  const model = join(dir, "model"), data = join(dir, "data");
  await python(["make-model", model, "--activation", activation, "--seed", "3"]);
  await python(["make-data", data, "--tokens", String(tokens), "--seed", "4"]);
  return { dir, model, data };
}

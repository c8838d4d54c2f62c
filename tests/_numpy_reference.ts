/**
 * The held-out float64 numpy GPT-2 (tests/reference/gpt2_numpy.py) as a test oracle: Hugging
 * Face semantics, written independently of repgpt's TypeScript. PyTorch is not installable on
 * these machines (no PyPI); numpy is.
 */
import { join } from "node:path";
import { probeTool, type Tool } from "./_tool.ts";

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

let numpy: Tool | undefined;

/** Run the numpy reference with `args`; its stdout. Throws a clear error when numpy is missing. */
export async function python(args: string[]): Promise<string> {
  numpy?.need();
  const { code, out, err } = await run("python3", [NUMPY_SCRIPT, ...args]);
  if (code !== 0) throw new Error(`gpt2_numpy.py ${args.join(" ")} failed (${code}):\n${err}`);
  return out;
}

/**
 * Whether `testFile`'s numpy-oracle tests should run: python3 has numpy, or CI=true (then
 * {@link python} fails them with a clear message). Otherwise they are skipped, with a message.
 */
export async function hasNumpy(testFile: string): Promise<boolean> {
  numpy = await probeTool(
    testFile,
    "python3 with numpy (the held-out numpy GPT-2 reference)",
    "apt-get install python3-numpy",
    async () => (await run("python3", ["-c", "import numpy"])).code === 0,
  );
  return numpy.run;
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

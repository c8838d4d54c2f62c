import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { sampleToken } from "../src/train/sample.ts";
import { Rng } from "../src/model/rng.ts";
import { runTrain, tinyRunArgs, writeTokenData } from "./_train_run.ts";

Deno.test("sample: temperature 0 is argmax; top-k keeps only the k most likely", () => {
  const logits = new Float32Array([0.1, 3, -2, 2.5, 1]);
  const rng = new Rng(1);
  assertEquals(sampleToken(logits, 0, 0, rng), 1);
  const seen = new Set<number>();
  for (let i = 0; i < 400; i++) seen.add(sampleToken(logits, 1, 2, rng));
  assertEquals([...seen].sort(), [1, 3]);
  // Without top-k every token shows up at a high temperature.
  for (let i = 0; i < 2000; i++) seen.add(sampleToken(logits, 5, 0, rng));
  assertEquals([...seen].sort(), [0, 1, 2, 3, 4]);
});

Deno.test("sample: deno task sample streams text from a run's out dir, reproducibly", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sample_test_" });
  try {
    const out = join(dir, "out");
    await runTrain(tinyRunArgs(await writeTokenData(join(dir, "data")), out, ["--max-steps", "2"]));
    const sample = async (seed: string) => {
      const r = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "tasks/sample.ts", "--from", out, "--prompt", "Hello", "--tokens", "6"]
          .concat(["--seed", seed]),
        cwd: new URL("..", import.meta.url).pathname,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(r.code, 0, new TextDecoder().decode(r.stderr));
      return new TextDecoder().decode(r.stdout);
    };
    const a = await sample("5");
    assert(a.startsWith("Hello") && a.trim().length > "Hello".length, a);
    assertEquals(await sample("5"), a);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

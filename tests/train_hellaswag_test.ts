/**
 * `deno task train --hellaswag FILE` scores HellaSwag at every eval and logs `hellaswag_acc_norm`
 * to the console, metrics.jsonl and TensorBoard (`HellaSwag/acc_norm`).
 */
import { assert, assertEquals } from "./_assert.ts";
import { join } from "node:path";
import { runTrain, tinyRunArgs, writeTokenData } from "./_train_run.ts";
import { generateHellaSwag } from "./_hellaswag.ts";
import { readMetrics } from "../src/log/metrics.ts";
import { readEvents } from "../src/log/tensorboard.ts";

Deno.test("train --hellaswag: the metric is logged at every eval", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = await writeTokenData(join(dir, "data"));
    const out = join(dir, "out"), file = join(dir, "hellaswag.jsonl");
    await Deno.writeTextFile(file, generateHellaSwag(10, 4));
    const args = ["--eval-interval", "6", "--eval-steps", "2", "--hellaswag", file];
    const text = await runTrain(tinyRunArgs(data, out, [...args, "--hellaswag-limit", "8"]));
    const logged = (await readMetrics(join(out, "metrics.jsonl")))
      .filter((r) => r.hellaswag_acc_norm !== undefined);
    assertEquals(logged.map((r) => r.step), [0, 6, 12]);
    for (const r of logged) {
      const accNorm = r.hellaswag_acc_norm as number;
      assert(accNorm >= 0 && accNorm <= 1 && Number.isInteger(accNorm * 8), `${accNorm}`);
    }
    assertEquals(text.match(/hellaswag acc_norm [0-9.]+ acc [0-9.]+ \| 8 examples/g)?.length, 3);
    const tb = join(out, "tensorboard");
    const tags = [...Deno.readDirSync(tb)].flatMap((e) => readEvents(join(tb, e.name)))
      .flatMap((e) => e.scalars.filter((s) => s.tag === "HellaSwag/acc_norm").map(() => e.step));
    assertEquals(tags, [0, 6, 12]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train --hellaswag: a bad file stops the run before it starts, naming FILE:line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = await writeTokenData(join(dir, "data"));
    const out = join(dir, "out"), file = join(dir, "bad.jsonl");
    await Deno.writeTextFile(file, '{"ctx": "a", "endings": ["b"], "label": 0}\n');
    const err = await runTrain(
      tinyRunArgs(data, out, ["--eval-interval", "6", "--hellaswag", file]),
    )
      .then(() => "", (e: Error) => e.message);
    assert(err.includes(`${file}:1: "endings" must be 4 strings`), err);
    assert(!(await Deno.stat(join(out, "metrics.jsonl")).then(() => true, () => false)));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

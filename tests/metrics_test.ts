import { MetricsWriter, readMetrics } from "../src/log/metrics.ts";
import { assertEquals, assertRejects } from "./_assert.ts";
import { join } from "node:path";

const dir = await Deno.makeTempDir({ prefix: "metrics_test_" });

Deno.test("metrics: one JSON object per line, written through, NaN as null", async () => {
  const path = join(dir, "run1", "metrics.jsonl");
  const w = await MetricsWriter.open(path, { resumeStep: null });
  w.write({ step: 0, train_loss: 10.98, lr: 5e-6, grad_norm: NaN, tokens_per_s: 1000 });
  w.write({ step: 0, val_loss: 10.9 });
  // Readable before close: each line reached the file when it was written.
  assertEquals(
    await Deno.readTextFile(path),
    '{"step":0,"train_loss":10.98,"lr":0.000005,"grad_norm":null,"tokens_per_s":1000}\n' +
      '{"step":0,"val_loss":10.9}\n',
  );
  w.close();
  assertEquals((await readMetrics(path))[1], { step: 0, val_loss: 10.9 });
});

Deno.test("metrics: resume drops steps after the checkpoint and a torn line", async () => {
  const path = join(dir, "resume.jsonl");
  const lines = [];
  for (let step = 0; step < 10; step++) {
    lines.push(JSON.stringify({ step, train_loss: 10 - step }));
    if (step % 3 === 0) lines.push(JSON.stringify({ step, val_loss: 11 - step }));
  }
  await Deno.writeTextFile(path, lines.join("\n") + '\n{"step":10,"train_lo');
  const w = await MetricsWriter.open(path, { resumeStep: 6 });
  // Kept: steps 0..6 (7 lines) and evals at 0, 3, 6; dropped: 7, 8, 9, eval 9, the torn line.
  assertEquals(w.dropped, 5);
  w.write({ step: 7, train_loss: 2.5 });
  w.close();
  const records = await readMetrics(path);
  assertEquals(records.map((r) => r.step), [0, 0, 1, 2, 3, 3, 4, 5, 6, 6, 7]);
  assertEquals(records.at(-1), { step: 7, train_loss: 2.5 });

  // Resuming where the file already ends rewrites nothing.
  const again = await MetricsWriter.open(path, { resumeStep: 7 });
  assertEquals(again.dropped, 0);
  again.close();
  // A fresh start empties the file.
  (await MetricsWriter.open(path, { resumeStep: null })).close();
  assertEquals(await readMetrics(path), []);
});

Deno.test("metrics: resume repairs a torn last line that ends in a newline or zeros", async () => {
  for (const tail of ['{"step":3,"train_lo\n', "\0\0\0\0", "\0\0\n"]) {
    const path = join(dir, "torn.jsonl");
    await Deno.writeTextFile(path, '{"step":1}\n{"step":2}\n' + tail);
    const w = await MetricsWriter.open(path, { resumeStep: 2 });
    assertEquals([w.torn, w.dropped], [true, 1], JSON.stringify(tail));
    w.write({ step: 3 });
    w.close();
    assertEquals(await Deno.readTextFile(path), '{"step":1}\n{"step":2}\n{"step":3}\n');
  }
});

Deno.test("metrics: reader ignores a line being written, rejects bad lines by line number", async () => {
  const path = join(dir, "bad.jsonl");
  await Deno.writeTextFile(path, '{"step":1}\n{"step":2,"x"');
  assertEquals(await readMetrics(path), [{ step: 1 }]);
  await Deno.writeTextFile(path, '{"step":1}\nnot json\n{"step":3}\n');
  await assertRejects(() => readMetrics(path), Error, `${path}:2: not a JSON line`);
  await Deno.writeTextFile(path, '{"loss":1}\n');
  await assertRejects(
    () => MetricsWriter.open(path, { resumeStep: 0 }),
    Error,
    ':1: no integer "step"',
  );
  assertEquals(await readMetrics(join(dir, "missing.jsonl")), []);
});

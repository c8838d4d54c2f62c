/**
 * Flags that contradict each other are usage errors (exit 2) naming both flags and saying what
 * to do, raised before any rank is launched or the GPU is touched, so nothing in --out changes.
 */
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { join } from "node:path";
import { OptionError } from "../src/train/option_table.ts";
import { resolveTrainConfig } from "../src/train/options.ts";
import { spawnTrain, writeTokenData } from "./_train_run.ts";

const CASES = [
  {
    flags: ["--model", "gpt2-xl", "--init-from", "weights"],
    names: ["--model gpt2-xl", "--init-from weights"],
    fix: "drop --model",
  },
  {
    flags: ["--resume", "--init-from", "weights"],
    names: ["--resume", "--init-from"],
    fix: "drop --init-from to resume",
  },
  {
    flags: ["--resume", "--move-aside"],
    names: ["--resume", "--move-aside"],
    fix: "applies to a fresh run only",
  },
  {
    flags: ["--grad-accum", "2", "--total-batch-tokens", "64"],
    names: ["--grad-accum", "--total-batch-tokens"],
    fix: "give one",
  },
  {
    flags: ["--max-steps", "5", "--time-budget", "60"],
    names: ["--max-steps 5", "--time-budget 60"],
    fix: "sizes it by time",
  },
];

Deno.test("train flag conflicts: resolution refuses each pair, naming both flags", () => {
  const pairs = [
    { model: "gpt2-xl", initFrom: "weights" },
    { resume: true, initFrom: "weights" },
    { resume: true, moveAside: true },
    { gradAccum: 2, totalBatchTokens: 64 },
    { maxSteps: 5, timeBudget: 60 },
  ] as const;
  for (const [i, given] of pairs.entries()) {
    for (const part of [...CASES[i].names, CASES[i].fix]) {
      assertThrows(
        () => resolveTrainConfig(given, { softwareAdapter: true, worldSize: 1 }),
        OptionError,
        part,
      );
    }
  }
  // Each flag alone, or --resume=false, is fine.
  resolveTrainConfig({ initFrom: "w", resume: false }, { softwareAdapter: true, worldSize: 1 });
  resolveTrainConfig({ model: "tiny", gradAccum: 2 }, { softwareAdapter: true, worldSize: 1 });
});

Deno.test("train flag conflicts: the trainer exits 2 before launching or writing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = await writeTokenData(join(dir, "data"), { train: 2000, val: 500 });
    const out = join(dir, "out");
    await Deno.mkdir(out);
    const earlier = new TextEncoder().encode('{"step":1,"train_loss":5}\n');
    await Deno.writeFile(join(out, "metrics.jsonl"), earlier);
    // --nproc 2 too: the launcher must refuse before it starts ranks.
    for (const { flags, names, fix } of CASES) {
      const r = await spawnTrain(["--data", data, "--out", out, ...flags, "--nproc", "2"]).output();
      const stderr = new TextDecoder().decode(r.stderr);
      assertEquals(r.code, 2, stderr);
      // No adapter line, no rank output: refused before the GPU or any rank.
      assertEquals(new TextDecoder().decode(r.stdout), "");
      for (const name of names) assert(stderr.includes(name), stderr);
      assert(stderr.includes(fix), stderr);
      assertEquals([...Deno.readDirSync(out)].map((e) => e.name), ["metrics.jsonl"]);
      assertEquals(await Deno.readFile(join(out, "metrics.jsonl")), earlier);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

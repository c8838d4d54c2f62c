/**
 * Never lose a run: a fresh run refuses a folder that holds one (or moves it aside on request),
 * resume skips a damaged checkpoint and repairs a torn metrics line, and bad resume requests
 * fail naming the flag or file, the reason, with the earlier run's files byte-identical.
 */
import { dirname, join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import {
  changedFiles,
  runTrain,
  snapshotFiles,
  tinyRunArgs,
  trainLosses,
  trainOutcome,
  writeTokenData,
} from "./_train_run.ts";
import { SafetensorsReader, writeSafetensors } from "../src/io/safetensors.ts";

async function copyRun(from: string, to: string): Promise<Map<string, Uint8Array>> {
  const files = await snapshotFiles(from);
  for (const [rel, bytes] of files) {
    await Deno.mkdir(dirname(join(to, rel)), { recursive: true });
    await Deno.writeFile(join(to, rel), bytes);
  }
  return files;
}

/** Rewrite checkpoint `path` with some metadata changed (e.g. a bad loader position). */
async function changeMetadata(path: string, changes: Record<string, string>): Promise<void> {
  using reader = await SafetensorsReader.open(path);
  const tensors = [];
  for (const name of reader.names()) {
    const { shape } = reader.info(name);
    tensors.push({ name, dtype: "F32" as const, shape, data: await reader.readF32(name) });
  }
  await writeSafetensors(path, tensors, { ...reader.metadata, ...changes });
}

Deno.test("run dir: an earlier run is never lost", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "run_dir_test_" });
  try {
    const data = await writeTokenData(join(dir, "data"));
    // Checkpoints at steps 9 and 12 (every 3, the last 2 kept).
    const straight = join(dir, "straight");
    await runTrain(tinyRunArgs(data, straight));
    const want = await trainLosses(straight);
    let n = 0;
    const copy = async () => {
      const out = join(dir, `run${n++}`);
      return { out, before: await copyRun(straight, out) };
    };

    await t.step("a fresh run into a folder holding a run refuses", async () => {
      const { out, before } = await copy();
      const { code, stderr } = await trainOutcome(tinyRunArgs(data, out));
      assertEquals(code, 1, stderr);
      assert(stderr.includes(`${out} already holds a run`), stderr);
      assert(/--resume/.test(stderr) && /another --out/.test(stderr), stderr);
      assertEquals(changedFiles(await snapshotFiles(out), before), []);
    });

    await t.step("--move-aside moves the earlier run to a sibling folder", async () => {
      const { out, before } = await copy();
      const { code, stdout, stderr } = await trainOutcome(
        tinyRunArgs(data, out, ["--move-aside", "--max-steps", "2"]),
      );
      assertEquals(code, 0, stderr);
      const aside = [...Deno.readDirSync(dir)].map((e) => e.name)
        .filter((name) => name.startsWith(`run${n - 1}.old-`));
      assertEquals(aside.length, 1);
      assert(stdout.includes(`moved the earlier run in ${out}`), stdout);
      assert(stdout.includes(join(dir, aside[0])), stdout);
      before.delete(".lock"); // the lock stays with the folder
      assertEquals(changedFiles(await snapshotFiles(join(dir, aside[0])), before), []);
      assertEquals([...(await trainLosses(out)).keys()], [1, 2]);
    });

    await t.step("--max-steps at or below the checkpoint's step is a usage error", async () => {
      const { out, before } = await copy();
      for (const maxSteps of ["12", "5"]) {
        const { code, stderr } = await trainOutcome(
          tinyRunArgs(data, out, ["--resume", "--max-steps", maxSteps]),
        );
        assertEquals(code, 2, stderr);
        assert(stderr.includes(`--max-steps ${maxSteps} is not above the step 12 of `), stderr);
        assert(stderr.includes("step_00000012.safetensors"), stderr);
      }
      assertEquals(changedFiles(await snapshotFiles(out), before), []);
    });

    await t.step("a bad loader position names the checkpoint and the reason", async () => {
      const { out } = await copy();
      const path = join(out, "checkpoints", "step_00000012.safetensors");
      await changeMetadata(path, { loader_state: JSON.stringify({ shard: 3, position: 0 }) });
      const before = await snapshotFiles(out);
      const { code, stderr } = await trainOutcome(
        tinyRunArgs(data, out, ["--resume", "--max-steps", "13"]),
      );
      assertEquals(code, 1, stderr);
      assert(stderr.includes(`${path}: its data position does not fit`), stderr);
      assert(stderr.includes("shard 3 is not in [0, 1)"), stderr);
      assertEquals(changedFiles(await snapshotFiles(out), before), []);
    });

    await t.step("resume skips a damaged newest checkpoint and a torn metrics line", async () => {
      const { out } = await copy();
      const newest = join(out, "checkpoints", "step_00000012.safetensors");
      await Deno.truncate(newest, 100_000);
      const damaged = await Deno.readFile(newest);
      const metrics = join(out, "metrics.jsonl");
      await Deno.writeTextFile(metrics, '{"step":13,"train_lo', { append: true });
      const { code, stderr } = await trainOutcome(tinyRunArgs(data, out, ["--resume"]));
      assertEquals(code, 0, stderr);
      assert(stderr.includes(`skipped ${newest}, it does not load: truncated`), stderr);
      assert(stderr.includes(`${metrics}: dropped a torn last line`), stderr);
      assertEquals([...(await trainLosses(out)).entries()], [...want.entries()]);
      // The damaged file was moved aside when step 12 was saved again, not deleted.
      assertEquals(
        await Deno.readFile(join(out, "checkpoints", "abandoned", "step_00000012.safetensors")),
        damaged,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

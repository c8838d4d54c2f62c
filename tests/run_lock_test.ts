/**
 * A run folder has one owner: a second lock (or trainer) fails at once naming the holder, and
 * a holder killed with SIGKILL leaves no stale lock.
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { RunLock } from "../src/io/run_lock.ts";
import {
  spawnTrain,
  tinyRunArgs,
  trainLosses,
  trainOutcome,
  writeTokenData,
} from "./_train_run.ts";

const LOCK_URL = new URL("../src/io/run_lock.ts", import.meta.url).href;

Deno.test("run lock: one holder at a time, released on exit however it exits", async () => {
  const dir = await Deno.makeTempDir({ prefix: "run_lock_test_" });
  try {
    const lock = await RunLock.acquire(dir);
    assertEquals(lock.previous, null);
    await assertRejects(
      () => RunLock.acquire(dir),
      Error,
      `${dir} is in use by another run (pid ${Deno.pid} on host ${Deno.hostname()}`,
    );
    lock.release();
    (await RunLock.acquire(dir)).release();

    // A holder killed with SIGKILL: the kernel frees the lock; the next holder reports it.
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `const { RunLock } = await import("${LOCK_URL}"); await RunLock.acquire("${dir}"); ` +
        `console.log("locked"); setInterval(() => {}, 1000);`,
      ],
      stdout: "piped",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    assertEquals((await reader.read()).value?.trim(), "locked");
    await assertRejects(() => RunLock.acquire(dir), Error, `pid ${child.pid}`);
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel();
    using again = await RunLock.acquire(dir);
    assertEquals(again.previous?.pid, child.pid);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("run lock: a second trainer on a busy --out fails fast naming the holder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "run_lock_train_" });
  try {
    const data = await writeTokenData(join(dir, "data"));
    const out = join(dir, "out");
    const first = spawnTrain(tinyRunArgs(data, out, ["--max-steps", "60", "--log-interval", "1"]));
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline && (await trainLosses(out).catch(() => new Map())).size === 0) {
      await new Promise((r) => setTimeout(r, 100));
    }
    // The most destructive second run: a fresh one that would move the first run aside.
    const second = await trainOutcome(tinyRunArgs(data, out, ["--move-aside"]));
    assertEquals(second.code, 1, second.stderr);
    assert(second.stderr.includes(`${out} is in use by another run (pid `), second.stderr);
    assert(second.stderr.includes(`on host ${Deno.hostname()}`), second.stderr);
    assert(!second.stdout.includes("step "), "the second run trained");
    const { code, stderr } = await first.output();
    assertEquals(code, 0, new TextDecoder().decode(stderr));
    // The first run's files are its own and whole: every step logged once, nothing moved.
    assertEquals([...(await trainLosses(out)).keys()], Array.from({ length: 60 }, (_, i) => i + 1));
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["data", "out"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * All-reduce between real rank processes: the ring over real Unix sockets and the shared-memory
 * transport (files mapped by every rank, barriers over sockets), which must give the ring's
 * bits; failures of a rank (death, hang) and programming errors reported by both.
 */
import { assert, assertEquals } from "./_assert.ts";
import { outputWithin, plain, rankCommand, rankData, ringReference } from "./_dist_rank.ts";

const TRANSPORTS = ["socket", "shm"];

/** Runs `check` on `W` launched ranks and compares every rank's bytes with the reference. */
async function checkRing(W: number, n: number, dist = "socket"): Promise<void> {
  const out = await Deno.makeTempDir({ prefix: "repgpt-allreduce-test-" });
  try {
    // 64 KiB chunks (shm: staging areas): 400 KB test arrays cross several per segment.
    const args = ["--nproc", `${W}`, "--dist", dist, "--chunk", "65536", "check", out, `${n}`];
    const res = await outputWithin(rankCommand(args));
    assertEquals(res.code, 0, plain(res.stderr));
    const inputs = Array.from({ length: W }, (_, r) => rankData(r, n));
    const expected: Record<string, Float32Array> = {
      sum: ringReference(inputs, false),
      mean: ringReference(inputs, true),
      bcast: rankData(99, n),
    };
    for (const what of Object.keys(expected)) expected[`host-${what}`] = expected[what];
    for (const [what, ref] of Object.entries(expected)) {
      for (let r = 0; r < W; r++) {
        const got = new Uint32Array((await Deno.readFile(`${out}/rank${r}.${what}.bin`)).buffer);
        const bad = got.findIndex((bits, i) => bits !== new Uint32Array(ref.buffer)[i]);
        const where = `${dist}, rank ${r} ${what}: element ${bad}`;
        assertEquals(bad, -1, `${where} differs from the ring order`);
      }
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}

for (const dist of TRANSPORTS) {
  Deno.test(`allreduce ${dist}: 3 ranks get bit-identical sum and mean in the ring's order`, async () => {
    // The ring order really matters for these inputs: a plain left-to-right sum differs.
    const n = 100_003;
    const x = [0, 1, 2].map((r) => rankData(r, n));
    const ring = ringReference(x, false);
    assert(x[0].some((_, i) => Math.fround(Math.fround(x[0][i] + x[1][i]) + x[2][i]) !== ring[i]));
    await checkRing(3, n, dist);
  });

  Deno.test(`allreduce ${dist}: fewer floats than ranks (empty segments) still reduce`, async () => {
    await checkRing(3, 2, dist);
  });
}

Deno.test("allreduce shm: 4 ranks, sizes around the SIMD width, equal the ring's bits", async () => {
  for (const n of [17, 64 * 4 + 3, 70_001]) await checkRing(4, n, "shm");
});

/** Starts W ranks directly (no launcher, so nobody kills the survivors for us). */
function startRanks(W: number, dir: string, dist: string, env: Record<string, string> = {}) {
  return Array.from({ length: W }, (_, r) =>
    rankCommand(["--dist", dist, "loop"], {
      ...env,
      RANK: `${r}`,
      WORLD_SIZE: `${W}`,
      REPGPT_SOCKET_DIR: dir,
    }).spawn());
}

/** Waits until `child` has printed `iter <k>` for some k >= 5; returns its pid line. */
async function waitForIterations(child: Deno.ChildProcess): Promise<string> {
  let text = "";
  const reader = child.stdout.getReader();
  while (!/iter ([5-9]|\d\d)/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`rank exited before iterating: ${text}`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  child.stdout.cancel();
  return text;
}

async function expectFailure(child: Deno.ChildProcess, startedAt: number, names: RegExp) {
  const { code } = await child.status;
  const stderr = plain(new Uint8Array(await new Response(child.stderr).arrayBuffer()));
  assert(code !== 0, "a survivor exited 0");
  assert(Date.now() - startedAt < 60_000, "survivor took over 60 s to notice");
  assert(names.test(stderr), `error does not match ${names}: ${stderr.slice(0, 600)}`);
}

for (const dist of TRANSPORTS) {
  Deno.test(`allreduce ${dist}: kill -9 of one of 3 ranks mid-loop fails the others, naming it`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "repgpt-fault-test-" });
    try {
      const ranks = startRanks(3, dir, dist);
      await Promise.all(ranks.map(waitForIterations));
      const killedAt = Date.now();
      ranks[1].kill("SIGKILL");
      await ranks[1].status;
      await ranks[1].stderr.cancel();
      await expectFailure(ranks[0], killedAt, /rank 1 closed its connection \(died\?\)/);
      await expectFailure(ranks[2], killedAt, /rank 1 closed its connection \(died\?\)/);
      assertEquals([...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".map")), []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test(`allreduce ${dist}: a hung rank (SIGSTOP) fails the other after the timeout, naming it`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "repgpt-hang-test-" });
    const ranks = startRanks(2, dir, dist, { REPGPT_DIST_TIMEOUT: "2" });
    try {
      await Promise.all(ranks.map(waitForIterations));
      const stoppedAt = Date.now();
      ranks[1].kill("SIGSTOP");
      await expectFailure(
        ranks[0],
        stoppedAt,
        /no data from rank 1 for 2 s|rank 1 stopped reading/,
      );
    } finally {
      ranks[1].kill("SIGKILL");
      await ranks[1].status;
      await ranks[1].stderr.cancel();
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test(`allreduce ${dist}: ranks calling collectives of different lengths get a clear error`, async () => {
    const res = await outputWithin(rankCommand(["--nproc", "2", "--dist", dist, "mismatch"]));
    assert(res.code !== 0);
    const text = plain(res.stderr);
    assert(
      (dist === "shm"
        ? /rank \d is in collective #2 \(shared-memory all-reduce sum of 1[01] floats at \d+\) but rank \d is in/
        : /rank \d is in collective #0 \(all-reduce sum of 1[01] floats\) but rank \d is in/).test(
          text,
        ),
      text.slice(0, 600),
    );
  });

  Deno.test(`allreduce ${dist}: completes while a rank's main thread is blocked (it runs in a Worker)`, async () => {
    const res = await outputWithin(rankCommand(["--nproc", "2", "--dist", dist, "busy-main"]));
    const out = plain(res.stdout);
    assertEquals(res.code, 0, plain(res.stderr));
    const freed = Number(out.match(/^main thread free at (\d+)$/m)?.[1]);
    const rank1Done = Number(out.match(/^\[rank 1\] finished at (\d+)$/m)?.[1]);
    assert(rank1Done < freed, `rank 1 waited for rank 0's main thread:\n${out}`);
  });

  Deno.test(`allreduce ${dist}: close() ends a collective stuck on a silent peer at once`, async () => {
    const res = await outputWithin(rankCommand(["--nproc", "2", "--dist", dist, "close-pending"]));
    const out = plain(res.stdout);
    assertEquals(res.code, 0, plain(res.stderr));
    const m = out.match(/^close took (\d+) ms; the all-reduce rejected: .*communicator closed$/m);
    assert(m, out);
    assert(Number(m[1]) < 2500, `close() waited for the peer: ${m[0]}`);
  });
}

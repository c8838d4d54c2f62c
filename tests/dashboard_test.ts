/**
 * `deno task dashboard` as a real process on real run folders, its page loaded in headless
 * chromium (tests/_chromium.ts): the charts are drawn with the runs' points, an appended
 * metrics.jsonl line shows up within 2 s, a second run is overlaid, torn and non-JSON lines are
 * skipped and counted on the page, a deleted run keeps its last points, and requests for
 * anything but the page's own routes are refused.
 */
import { assert, assertEquals } from "./_assert.ts";
import { join } from "node:path";
import { Chromium, chromiumFor } from "./_chromium.ts";
import { saveCheckpoint } from "../src/io/checkpoint.ts";
import { RUN_COLORS } from "../src/log/plot_svg.ts";

const DASHBOARD = new URL("../tasks/dashboard.ts", import.meta.url).pathname;
const chromium = await chromiumFor("dashboard_test");

function trainLine(step: number): string {
  const loss = 3 + 8 * Math.exp(-step / 20) + 0.05 * Math.sin(step);
  return JSON.stringify({
    step,
    train_loss: loss,
    lr: 3e-3 * Math.min(1, step / 10),
    grad_norm: 1 + 2 / step,
    tokens_per_s: 5000 + step,
    ms: 100,
    mfu: null,
  }) + "\n";
}

/** A run folder: `steps` train lines, val every 25, one non-JSON line and a torn last line. */
async function writeRun(dir: string, steps: number): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  let text = "";
  for (let s = 1; s <= steps; s++) {
    text += trainLine(s);
    if (s % 25 === 0) text += JSON.stringify({ step: s, val_loss: 3.5 + 4 / s }) + "\n";
    if (s === 30) text += "Traceback (most recent call last):\n";
  }
  await Deno.writeTextFile(join(dir, "metrics.jsonl"), text + '{"step": 61, "train_lo');
  await saveCheckpoint(join(dir, "checkpoints"), {
    step: 50,
    layout: [{ name: "w", shape: [2], offset: 0, size: 2 }],
    params: new Float32Array(2),
    config: { model: "cpu-small", lr: 0.003, batchSize: 8, seqLen: 64 },
  });
  await Deno.writeTextFile(join(dir, "sample.txt"), "Once upon a time, a sample.");
}

/** Start the dashboard process; its URL (from the line it prints) and the process. */
async function startDashboard(args: string[]) {
  const process = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", DASHBOARD, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = { text: "" };
  const drain = (async () => {
    for await (const chunk of process.stdout.pipeThrough(new TextDecoderStream())) {
      out.text += chunk;
    }
  })();
  const err = new Response(process.stderr).text();
  const deadline = Date.now() + 60_000;
  while (!/http:\/\/127\.0\.0\.1:\d+\//.test(out.text)) {
    if (Date.now() > deadline) throw new Error(`no URL printed: ${out.text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = out.text.match(/http:\/\/127\.0\.0\.1:\d+\//)![0];
  return { process, url, drain, err };
}

/** A raw HTTP/1.1 GET (no URL normalisation, unlike fetch); status line and body. */
async function rawGet(url: string, path: string, host = new URL(url).host) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(url).port) });
  await conn.write(
    new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
  );
  const text = await new Response(conn.readable).text();
  return { status: Number(text.split(" ")[1]), text };
}

Deno.test({
  name: "dashboard: chromium shows the runs live",
  ignore: chromium === null,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "dashboard_test_" });
    const a = join(dir, "run_a"), b = join(dir, "run_b");
    await writeRun(a, 60);
    await Deno.mkdir(b); // no metrics.jsonl yet
    const dash = await startDashboard([a, b]);
    const browser = await Chromium.launch(chromium!);
    try {
      const page = await browser.open(dash.url);
      const points = async (chart: string) =>
        JSON.parse(
          await page.evaluate<string>(
            `document.getElementById("chart-${chart}")?.dataset.points ?? "{}"`,
          ),
        );
      const card = (run: string) =>
        page.evaluate<{ status: string; skipped: string; text: string }>(`(() => {
          const el = [...document.querySelectorAll(".run")].find((e) => e.dataset.run === ${
          JSON.stringify(run)
        });
          return el && { status: el.dataset.status, skipped: el.dataset.skipped, text: el.innerText };
        })()`);

      await t.step("the charts are drawn with the run's points", async () => {
        await page.waitFor(`document.getElementById("chart-loss")?.dataset.points?.length > 2`);
        assertEquals(await points("loss"), { [`${a} train`]: 60, [`${a} val`]: 2 });
        assertEquals(await points("lr"), { [`${a} lr`]: 60 });
        assertEquals(await points("grad_norm"), { [`${a} grad norm`]: 60 });
        assertEquals(await points("tokens_per_s"), { [`${a} tokens/s`]: 60 });
        // MFU is null in every line (unknown GPU peak): an empty chart that says so.
        assert(
          (await page.evaluate<string>(`document.getElementById("chart-mfu").innerText`))
            .includes("no MFU points"),
        );
        assertEquals(
          await page.evaluate(`document.getElementById("chart-hellaswag").hidden`),
          true,
        );
        // Pixels of run a's color on the loss canvas: the curve is really drawn.
        const [r, g, bl] = [1, 3, 5].map((i) => parseInt(RUN_COLORS[0].slice(i, i + 2), 16));
        const colored = await page.evaluate<number>(`(() => {
          const c = document.querySelector("#chart-loss canvas");
          const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 0; i < d.length; i += 4) {
            if (Math.abs(d[i] - ${r}) + Math.abs(d[i + 1] - ${g}) + Math.abs(d[i + 2] - ${bl}) < 30) n++;
          }
          return n;
        })()`);
        assert(colored > 200, `loss curve pixels: ${colored}`);
      });

      await t.step(
        "skipped lines, config and sample are shown; a folder without metrics too",
        async () => {
          const info = (await card(a))!;
          assertEquals(info.status, "ok");
          assertEquals(info.skipped, "1", "the Traceback line; the torn last line is not counted");
          assert(info.text.includes("1 line(s) of metrics.jsonl skipped"), info.text);
          assert(info.text.includes("config (step_00000050.safetensors)"), info.text);
          assert(info.text.includes("Once upon a time, a sample."), info.text);
          const empty = (await card(b))!;
          assertEquals(empty.status, "no-metrics");
          assert(empty.text.includes("no metrics.jsonl here (yet)"), empty.text);
        },
      );

      await t.step("appended lines show up within 2 s", async () => {
        const trainPoints = `JSON.parse(document.getElementById("chart-loss").dataset.points)[${
          JSON.stringify(`${a} train`)
        }]`;
        // Completes the torn line, then a HellaSwag line.
        await Deno.writeTextFile(
          join(a, "metrics.jsonl"),
          'ss": 2.9}\n' + trainLine(62) + '{"step": 62, "hellaswag_acc_norm": 0.27}\n',
          { append: true },
        );
        const waits = [(await page.waitFor(`${trainPoints} === 62`, 10_000)).ms];
        // More lines at different phases of the server's polling: each must show within 2 s.
        for (const [i, pause] of [100, 400, 700, 1000].entries()) {
          await new Promise((r) => setTimeout(r, pause));
          await Deno.writeTextFile(join(a, "metrics.jsonl"), trainLine(63 + i), { append: true });
          waits.push((await page.waitFor(`${trainPoints} === ${63 + i}`, 10_000)).ms);
        }
        assert(Math.max(...waits) < 2000, `new points took ${waits.map(Math.round)} ms to show`);
        await page.waitFor(`!document.getElementById("chart-hellaswag").hidden`, 5_000);
        assertEquals(await points("hellaswag"), { [`${a} acc_norm`]: 1 });
      });

      await t.step("a second run is overlaid once it writes metrics", async () => {
        let text = "";
        for (let s = 1; s <= 30; s++) text += trainLine(s);
        await Deno.writeTextFile(join(b, "metrics.jsonl"), text);
        await page.waitFor(
          `Object.keys(JSON.parse(document.getElementById("chart-loss").dataset.points)).length === 3`,
          5_000,
        );
        assertEquals(await points("loss"), {
          [`${a} train`]: 66,
          [`${a} val`]: 2,
          [`${b} train`]: 30,
        });
        const legend = await page.evaluate<string>(
          `document.querySelector("#chart-loss .u-legend").innerText`,
        );
        assert(legend.includes(`${a} train`) && legend.includes(`${b} train`), legend);
      });

      await t.step("requests outside the page's routes are refused", async () => {
        const secret = await Deno.readTextFile(join(a, "sample.txt"));
        for (
          const path of [
            "/../../etc/passwd",
            "/%2e%2e/%2e%2e/etc/passwd",
            `/${a}/sample.txt`,
            `/..${a}/metrics.jsonl`,
            "/run_a/metrics.jsonl",
            "/0/metrics.jsonl",
          ]
        ) {
          const got = await rawGet(dash.url, path);
          assertEquals(got.status, 404, `${path}: ${got.text}`);
          assert(!got.text.includes(secret) && !got.text.includes("root:"), path);
        }
        const rebinding = await rawGet(dash.url, "/api/runs", "evil.example:80");
        assertEquals(rebinding.status, 403);
        assert(rebinding.text.includes('Host "evil.example:80"'), rebinding.text);
        assertEquals((await rawGet(dash.url, "/api/runs")).status, 200);
      });

      await t.step("a run deleted while shown keeps its last points", async () => {
        await Deno.remove(a, { recursive: true });
        await page.waitFor(
          `document.querySelector('.run[data-status="deleted"]')?.dataset.run === ${
            JSON.stringify(a)
          }`,
          5_000,
        );
        assert((await card(a))!.text.includes("run folder deleted"));
        assertEquals((await points("loss"))[`${a} train`], 66);
      });
    } finally {
      await browser.close();
      dash.process.kill("SIGINT");
      const status = await dash.process.status;
      await dash.drain;
      const err = await dash.err;
      await Deno.remove(dir, { recursive: true });
      assertEquals(status.code, 0, `dashboard exit: ${err}`);
    }
  },
});

Deno.test("dashboard: a bad RUN_DIR or a taken port names it and exits non-zero", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dashboard_test_" });
  const run = async (args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", DASHBOARD, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, err: new TextDecoder().decode(out.stderr) };
  };
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const missing = join(dir, "nope");
    const r1 = await run([missing]);
    assertEquals(r1.code, 2);
    assert(r1.err.includes(`RUN_DIR ${missing}: no such folder`), r1.err);

    const file = join(dir, "metrics.jsonl");
    await Deno.writeTextFile(file, trainLine(1));
    const r2 = await run([file]);
    assertEquals(r2.code, 2);
    assert(r2.err.includes(`RUN_DIR ${file}: not a folder`), r2.err);

    const port = (listener.addr as Deno.NetAddr).port;
    const r3 = await run([dir, "--port", String(port)]);
    assertEquals(r3.code, 1);
    assert(r3.err.includes(`port ${port} on 127.0.0.1 is in use`), r3.err);

    const r4 = await run([dir, "--port", "70000"]);
    assertEquals(r4.code, 2);
    assert(r4.err.includes("--port: 70000 is above the maximum 65535"), r4.err);
    assertEquals(await Deno.readTextFile(file), trainLine(1), "the run's file is untouched");
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

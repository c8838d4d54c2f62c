/**
 * `deno task plot` as a real process on run folders written here: the SVG's curves are checked
 * against the runs' points (one polyline vertex per finite loss, coordinates that map back to
 * the losses through the chart's own tick labels), and bad input fails naming the file or flag
 * without touching an earlier image.
 */
import { assert, assertEquals } from "./_assert.ts";
import { join } from "node:path";

const PLOT = new URL("../tasks/plot.ts", import.meta.url).pathname;

/** A realistic metrics.jsonl: `steps` train lines, a val line every `every` steps. */
function metricsLines(steps: number, { every = 25, scale = 1 } = {}): string[] {
  const lines: string[] = [];
  for (let step = 1; step <= steps; step++) {
    const loss = scale * (3 + 8 * Math.exp(-step / 30)) + 0.05 * Math.sin(step * 1.7);
    lines.push(JSON.stringify({
      step,
      train_loss: loss,
      lr: 3e-3 * Math.min(1, step / 20),
      grad_norm: 1 + 2 / step,
      tokens_per_s: 5000 + 10 * step,
      ms: 102.5,
      mfu: null,
    }));
    if (step % every === 0) lines.push(JSON.stringify({ step, val_loss: loss + 0.1 }));
  }
  return lines;
}

async function plot(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", PLOT, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function polylines(svg: string): Map<string, [number, number][]> {
  const found = new Map<string, [number, number][]>();
  for (
    const m of svg.matchAll(
      /<polyline data-run="([^"]*)" data-series="([^"]*)"[^>]*points="([^"]*)"/g,
    )
  ) {
    found.set(
      `${m[1]} ${m[2]}`,
      m[3].split(" ").map((p) => p.split(",").map(Number) as [number, number]),
    );
  }
  return found;
}

/** The chart's axis as its tick labels say: value -> pixel, fitted through the first and last. */
function axis(svg: string, cls: "x-tick" | "y-tick", log = false): (v: number) => number {
  const coord = cls === "x-tick" ? "x" : "y";
  const re = new RegExp(`<text class="${cls}"[^>]* ${coord}="([^"]+)"[^>]*>([^<]+)</text>`, "g");
  const ticks = [...svg.matchAll(re)].map((m) => {
    const label = m[2].endsWith("k") ? Number(m[2].slice(0, -1)) * 1000 : Number(m[2]);
    return [log ? Math.log10(label) : label, Number(m[1])];
  });
  assert(ticks.length >= 2, `${cls}: at least two ticks, got ${ticks.length}`);
  const [[v0, p0], [v1, p1]] = [ticks[0], ticks.at(-1)!];
  return (v) => p0 + ((log ? Math.log10(v) : v) - v0) / (v1 - v0) * (p1 - p0);
}

Deno.test("plot: the SVG's curves are the runs' points", async () => {
  const dir = await Deno.makeTempDir({ prefix: "plot_test_" });
  try {
    const a = join(dir, "run_a"), b = join(dir, "run_b");
    await Deno.mkdir(a);
    await Deno.mkdir(b);
    // Run a: a NaN loss (written as null), a hand-mangled line and a torn last line.
    const linesA = metricsLines(120);
    linesA.splice(40, 0, JSON.stringify({ step: 40, train_loss: null }), "not json {");
    await Deno.writeTextFile(join(a, "metrics.jsonl"), linesA.join("\n") + '\n{"step": 121, "tr');
    await Deno.writeTextFile(
      join(b, "metrics.jsonl"),
      metricsLines(80, { scale: 1.1 }).join("\n") + "\n",
    );
    const svgPath = join(dir, "loss.svg");

    const r = await plot([a, b, "--out", svgPath]);
    assertEquals(r.code, 0, r.stderr);
    assert(r.stderr.includes(`${a}/metrics.jsonl: skipped 1 line`), r.stderr);
    const svg = await Deno.readTextFile(svgPath);
    assert(svg.startsWith("<svg xmlns="), "an SVG document");
    const curves = polylines(svg);
    assertEquals([...curves.keys()].sort(), [
      `${a} train_loss`,
      `${a} val_loss`,
      `${b} train_loss`,
      `${b} val_loss`,
    ]);
    const x = axis(svg, "x-tick"), y = axis(svg, "y-tick");
    for (const [run, scale, steps] of [[a, 1, 120], [b, 1.1, 80]] as const) {
      const records = metricsLines(steps, { scale }).map((l) => JSON.parse(l));
      for (const field of ["train_loss", "val_loss"]) {
        const want = records.filter((rec) => typeof rec[field] === "number");
        const got = curves.get(`${run} ${field}`)!;
        assertEquals(got.length, want.length, `${run} ${field}: one vertex per point`);
        want.forEach((rec, i) => {
          const [px, py] = got[i];
          assert(Math.abs(px - x(rec.step)) < 0.02, `${run} ${field} step ${rec.step}: x ${px}`);
          assert(Math.abs(py - y(rec[field])) < 0.02, `${run} ${field} step ${rec.step}: y ${py}`);
        });
        // The extremes: the highest vertex is the largest loss, the lowest the smallest.
        const ys = got.map((p) => p[1]), losses = want.map((rec) => rec[field]);
        assertEquals(ys.indexOf(Math.min(...ys)), losses.indexOf(Math.max(...losses)));
        assertEquals(ys.indexOf(Math.max(...ys)), losses.indexOf(Math.min(...losses)));
      }
    }
    // Every vertex lies inside the plot area.
    const area = svg.match(/class="plot-area" x="(\d+)" y="(\d+)" width="(\d+)" height="(\d+)"/)!;
    const [ax, ay, aw, ah] = area.slice(1).map(Number);
    for (const pts of curves.values()) {
      for (const [px, py] of pts) {
        assert(px >= ax && px <= ax + aw && py >= ay && py <= ay + ah, `${px},${py} inside`);
      }
    }

    // A log step axis: same vertex counts, x maps through log10(step).
    const logPath = join(dir, "log.svg");
    assertEquals((await plot([b, "--out", logPath, "--log-steps"])).code, 0);
    const logSvg = await Deno.readTextFile(logPath);
    const lx = axis(logSvg, "x-tick", true);
    const train = polylines(logSvg).get(`${b} train_loss`)!;
    assertEquals(train.length, 80);
    for (const [i, [px]] of train.entries()) assert(Math.abs(px - lx(i + 1)) < 0.02, `log x ${i}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("plot: bad input names the file or flag and leaves the old image alone", async () => {
  const dir = await Deno.makeTempDir({ prefix: "plot_test_" });
  try {
    const empty = join(dir, "empty"), run = join(dir, "run");
    await Deno.mkdir(empty);
    await Deno.mkdir(run);
    await Deno.writeTextFile(join(run, "metrics.jsonl"), metricsLines(10).join("\n") + "\n");
    const svgPath = join(dir, "loss.svg");
    assertEquals((await plot([run, "--out", svgPath])).code, 0);
    const before = await Deno.readFile(svgPath);

    const noMetrics = await plot([run, empty, "--out", svgPath]);
    assertEquals(noMetrics.code, 1);
    assert(noMetrics.stderr.includes(`${empty}/metrics.jsonl: no such file`), noMetrics.stderr);

    const png = await plot([run, "--out", join(dir, "loss.png")]);
    assertEquals(png.code, 2);
    assert(png.stderr.includes("--out") && png.stderr.includes("only .svg"), png.stderr);

    const noOut = await plot([run]);
    assertEquals(noOut.code, 2);
    assert(noOut.stderr.includes("--out is required"), noOut.stderr);

    // A run with no loss at all (only eval-less, loss-less lines) cannot be drawn.
    await Deno.writeTextFile(join(empty, "metrics.jsonl"), '{"step": 1, "lr": 0.1}\n');
    const noLoss = await plot([empty, "--out", svgPath]);
    assertEquals(noLoss.code, 1);
    assert(noLoss.stderr.includes(`no train_loss or val_loss points in ${empty}`), noLoss.stderr);

    assertEquals(await Deno.readFile(svgPath), before, "the earlier image is untouched");
    assertEquals(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      ["empty", "loss.svg", "run"],
      "no partial files left",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * The loss chart as a standalone SVG string, no browser needed: train loss (solid) and val loss
 * (dashed, with a dot per eval) of one or more runs against the step, with axes, ticks and a
 * legend. `deno task plot` writes it; the dashboard draws the same curves live.
 *
 * Every finite point is drawn (no decimation), so the image is faithful to metrics.jsonl; each
 * curve is one `<polyline data-run=NAME data-series=FIELD>`.
 */
import type { MetricsRecord } from "./metrics.ts";

/** One run to draw: its legend label and its metrics records. */
export interface PlotRun {
  name: string;
  records: readonly MetricsRecord[];
}

/** Size and scale of the chart. */
export interface PlotOptions {
  width?: number;
  height?: number;
  /** Log-scale step axis (steps start at 1). */
  logSteps?: boolean;
  title?: string;
}

/** Curve colors, one per run (the dashboard page uses the same list). */
export const RUN_COLORS = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#17becf",
];

const SERIES = [
  { field: "train_loss", label: "train", dash: "" },
  { field: "val_loss", label: "val", dash: "6 4" },
] as const;

const MARGIN = { left: 64, right: 20, top: 36, bottom: 48 };

/** The loss chart of `runs` as an SVG document. Throws when no run has a loss point. */
export function lossChartSvg(runs: readonly PlotRun[], o: PlotOptions = {}): string {
  const width = o.width ?? 800, height = o.height ?? 480;
  const curves = runs.flatMap((run, r) =>
    SERIES.map((s) => ({
      run: run.name,
      ...s,
      color: RUN_COLORS[r % RUN_COLORS.length],
      points: lossPoints(run.records, s.field, o.logSteps ?? false),
    }))
  ).filter((c) => c.points.length > 0);
  if (curves.length === 0) {
    throw new Error(`no train_loss or val_loss points in ${runs.map((r) => r.name).join(", ")}`);
  }
  const all = curves.flatMap((c) => c.points);
  const x = scale(all.map((p) => p[0]), MARGIN.left, width - MARGIN.right, o.logSteps ?? false);
  const y = scale(all.map((p) => p[1]), height - MARGIN.bottom, MARGIN.top, false);
  const f = (v: number) => String(Math.round(v * 100) / 100);

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">` +
    `${escape(o.title ?? "loss")}</text>`,
  ];
  const plotBottom = height - MARGIN.bottom, plotRight = width - MARGIN.right;
  out.push(
    `<rect class="plot-area" x="${MARGIN.left}" y="${MARGIN.top}" ` +
      `width="${plotRight - MARGIN.left}" height="${plotBottom - MARGIN.top}" fill="none" ` +
      `stroke="#888"/>`,
  );
  for (const t of y.ticks) {
    const py = f(y.map(t));
    out.push(
      `<line x1="${MARGIN.left}" x2="${plotRight}" y1="${py}" y2="${py}" stroke="#eee"/>`,
      `<text class="y-tick" x="${MARGIN.left - 6}" y="${py}" text-anchor="end" ` +
        `dominant-baseline="middle">${y.label(t)}</text>`,
    );
  }
  for (const t of x.ticks) {
    const px = f(x.map(t));
    out.push(
      `<line x1="${px}" x2="${px}" y1="${MARGIN.top}" y2="${plotBottom}" stroke="#eee"/>`,
      `<text class="x-tick" x="${px}" y="${plotBottom + 16}" text-anchor="middle">` +
        `${x.label(t)}</text>`,
    );
  }
  out.push(
    `<text x="${(MARGIN.left + plotRight) / 2}" y="${height - 10}" text-anchor="middle">` +
      `step${o.logSteps ? " (log)" : ""}</text>`,
    `<text transform="translate(16 ${(MARGIN.top + plotBottom) / 2}) rotate(-90)" ` +
      `text-anchor="middle">loss</text>`,
  );
  for (const c of curves) {
    const pts = c.points.map(([s, l]) => `${f(x.map(s))},${f(y.map(l))}`);
    out.push(
      `<polyline data-run="${escape(c.run)}" data-series="${c.field}" fill="none" ` +
        `stroke="${c.color}" stroke-width="1.5"${c.dash ? ` stroke-dasharray="${c.dash}"` : ""} ` +
        `points="${pts.join(" ")}"/>`,
    );
    if (c.field === "val_loss") {
      for (const p of pts) {
        const [cx, cy] = p.split(",");
        out.push(`<circle cx="${cx}" cy="${cy}" r="2.5" fill="${c.color}"/>`);
      }
    }
  }
  // About 6.5 px per character at 12 px sans-serif, plus the line sample.
  const legendWidth = 40 + 6.5 * Math.max(...curves.map((c) => c.run.length + c.label.length + 1));
  const legendX = plotRight - legendWidth - 4;
  out.push(
    `<rect x="${legendX}" y="${MARGIN.top + 4}" width="${legendWidth}" ` +
      `height="${curves.length * 16 + 4}" ` +
      `fill="white" fill-opacity="0.85"/>`,
  );
  curves.forEach((c, i) => {
    const ly = MARGIN.top + 14 + i * 16, lx = legendX + 6;
    out.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${c.color}" ` +
        `stroke-width="2"${c.dash ? ` stroke-dasharray="${c.dash}"` : ""}/>`,
      `<text x="${lx + 30}" y="${ly}" dominant-baseline="middle">` +
        `${escape(c.run)} ${c.label}</text>`,
    );
  });
  out.push("</svg>\n");
  return out.join("\n");
}

/** [step, value] of the records with a finite `field` (and a positive step on a log axis). */
function lossPoints(records: readonly MetricsRecord[], field: string, logSteps: boolean) {
  const points: [number, number][] = [];
  for (const r of records) {
    const v = r[field];
    if (typeof v === "number" && Number.isFinite(v) && (!logSteps || r.step > 0)) {
      points.push([r.step, v]);
    }
  }
  return points;
}

/** A linear (or log10) map of `values`' nice-rounded range onto [from, to], with ticks. */
function scale(values: number[], from: number, to: number, log: boolean) {
  const t = log ? Math.log10 : (v: number) => v;
  let lo = t(Math.min(...values)), hi = t(Math.max(...values));
  if (hi - lo < 1e-12) [lo, hi] = [lo - 0.5, hi + 0.5];
  const step = niceStep((hi - lo) / 5, log);
  lo = Math.floor(lo / step + 1e-9) * step;
  hi = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = lo; v <= hi + step * 1e-6; v += step) {
    ticks.push(log ? 10 ** Math.round(v) : Number(v.toPrecision(12)));
  }
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return {
    /** Tick values in data units. */
    ticks,
    map: (v: number) => from + (t(v) - lo) / (hi - lo) * (to - from),
    label: (v: number) => log ? formatStep(v) : v.toFixed(decimals),
  };
}

function niceStep(raw: number, log: boolean): number {
  if (log) return Math.max(1, Math.ceil(raw)); // whole decades
  const p = 10 ** Math.floor(Math.log10(raw)), m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

function formatStep(v: number): string {
  return v >= 1000 && v % 1000 === 0 ? `${v / 1000}k` : String(Math.round(v));
}

function escape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

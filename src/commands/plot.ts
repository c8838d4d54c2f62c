/**
 * `deno task plot RUN_DIR... --out FILE.svg`: the loss chart of one or more runs (train loss
 * solid, val loss dashed) as an SVG image, for reports and READMEs. See src/log/plot_svg.ts.
 */
import { formatHelp, parseFlags, UsageError } from "./flags.ts";
import { writeAtomic } from "../io/atomic.ts";
import { readRun } from "../log/dashboard_run.ts";
import { lossChartSvg } from "../log/plot_svg.ts";

/** `deno task plot` flags. */
export const PLOT_FLAGS = {
  out: { type: "string", help: "the SVG file to write" },
  width: { type: "integer", min: 200, default: 800, help: "image width in pixels" },
  height: { type: "integer", min: 150, default: 480, help: "image height in pixels" },
  "log-steps": { type: "boolean", default: false, help: "log-scale step axis" },
  title: { type: "string", default: "loss", help: "chart title" },
} as const;

const USAGE = "deno task plot RUN_DIR... --out FILE.svg [flags]";

/** Entry point of `deno task plot`. */
export async function plotMain(args: string[]): Promise<void> {
  const { values, positionals, help } = parseFlags(args, PLOT_FLAGS, { positionals: true });
  if (help) {
    console.log(formatHelp(USAGE, PLOT_FLAGS));
    return;
  }
  const out = values.out;
  if (!out) throw new UsageError("--out is required");
  if (!out.toLowerCase().endsWith(".svg")) {
    throw new UsageError(`--out: ${out}: only .svg is written (a PNG would need a browser)`);
  }
  if (positionals.length === 0) throw new UsageError("give at least one RUN_DIR");
  const runs = [];
  for (const dir of positionals) {
    const run = await readRun(dir);
    if (run.skipped > 0) {
      console.warn(
        `warning: ${dir}/metrics.jsonl: skipped ${run.skipped} line(s) that are not JSON ` +
          `records (${run.skipReasons[0]})`,
      );
    }
    runs.push(run);
  }
  const svg = lossChartSvg(runs, {
    width: values.width,
    height: values.height,
    logSteps: values["log-steps"],
    title: values.title,
  });
  await writeAtomic(out, svg);
  const points = runs.reduce((n, r) => n + r.records.length, 0);
  console.log(`wrote ${out} (${runs.length} run(s), ${points} records)`);
}

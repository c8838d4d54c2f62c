/**
 * `deno task dashboard [RUN_DIR...] [--port N]`: serve the live dashboard of one or more run
 * folders (default `out`) on 127.0.0.1 and print its URL; Ctrl-C stops it. See
 * src/log/dashboard.ts.
 */
import { formatHelp, parseFlags, UsageError } from "./flags.ts";
import { startDashboard } from "../log/dashboard.ts";

/** `deno task dashboard` flags. */
export const DASHBOARD_FLAGS = {
  port: {
    type: "integer",
    min: 0,
    max: 65535,
    default: 0,
    help: "port on 127.0.0.1 (0: a free one)",
  },
} as const;

const USAGE = "deno task dashboard [RUN_DIR...] [--port N]   (RUN_DIR: a run's --out, default out)";

/** Entry point of `deno task dashboard`. */
export async function dashboardMain(args: string[]): Promise<void> {
  const { values, positionals, help } = parseFlags(args, DASHBOARD_FLAGS, { positionals: true });
  if (help) {
    console.log(formatHelp(USAGE, DASHBOARD_FLAGS));
    return;
  }
  const runs = positionals.length > 0 ? positionals : ["out"];
  for (const dir of runs) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(dir);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      throw new UsageError(`RUN_DIR ${dir}: no such folder (pass a run's --out folder)`);
    }
    if (!info.isDirectory) {
      throw new UsageError(`RUN_DIR ${dir}: not a folder (pass a run's --out)`);
    }
  }
  const dashboard = await startDashboard({ runs, port: values.port });
  for (const dir of runs) {
    try {
      await Deno.stat(`${dir}/metrics.jsonl`);
    } catch {
      console.warn(`warning: ${dir}/metrics.jsonl: not there (yet); shown once a run writes it`);
    }
  }
  console.log(`dashboard: ${dashboard.url} (${runs.join(", ")}; Ctrl-C stops it)`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      Deno.removeSignalListener("SIGINT", stop);
      resolve();
    };
    Deno.addSignalListener("SIGINT", stop);
  });
  await dashboard.close();
}

/**
 * One run folder as the dashboard and `deno task plot` see it: the records of its
 * metrics.jsonl, read incrementally and tolerantly, plus the run's config (from the newest
 * checkpoint's metadata) and its latest sample text (`sample.txt`), when present.
 *
 * Tolerant, unlike src/log/metrics.ts's reader, because a viewer must keep showing a run that a
 * crash, a hand edit or a half-copied file has damaged: complete lines that are not JSON records
 * with an integer `step` are skipped and counted; text after the last newline is a line still
 * being written and is left for the next poll. A file that shrank or was replaced (a resumed run
 * rewrites it, a fresh run empties it) is read again from the start.
 */
import { basename, join } from "node:path";
import { latestCheckpoint } from "../io/checkpoint.ts";
import { SafetensorsReader } from "../io/safetensors.ts";
import type { MetricsRecord } from "./metrics.ts";

/** Where a run folder stands. */
export type RunStatus =
  | "ok"
  /** The folder exists (or not yet) but holds no metrics.jsonl. */
  | "no-metrics"
  /** The folder was seen and is gone: the last records read are kept. */
  | "deleted";

/** The latest sample text shown is at most this many characters (its end). */
const SAMPLE_CHARS = 4000;
const SAMPLE_FILE = "sample.txt";

/** What {@link RunWatcher.poll} found. */
export interface RunChange {
  /** The file was replaced or shrank: `records` holds all records, not only new ones. */
  reset: boolean;
  /** Records new since the last poll (all of them when `reset`). */
  records: MetricsRecord[];
  /** Whether status, skipped count, config or sample changed. */
  meta: boolean;
}

/** Parsed complete lines: records plus how many lines were skipped and the first few why. */
export function parseMetricsLines(
  lines: readonly string[],
): { records: MetricsRecord[]; skipped: number; reasons: string[] } {
  const records: MetricsRecord[] = [], reasons: string[] = [];
  let skipped = 0;
  for (const line of lines) {
    if (line.trim() === "") continue;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      record = undefined;
    }
    if (Number.isSafeInteger((record as MetricsRecord | null)?.step)) {
      records.push(record as MetricsRecord);
    } else {
      skipped++;
      if (reasons.length < 3) reasons.push(`not a JSON record with a "step": ${line.slice(0, 60)}`);
    }
  }
  return { records, skipped, reasons };
}

/** Watches one run folder; {@link poll} reads what was appended since the last call. */
export class RunWatcher {
  /** All records read so far, in file order. */
  records: MetricsRecord[] = [];
  status: RunStatus = "no-metrics";
  /** Complete lines skipped (not JSON, or no integer step). */
  skipped = 0;
  /** Why the first few lines were skipped. */
  skipReasons: string[] = [];
  /** The newest checkpoint's run config, and which file it came from. */
  config: unknown = null;
  configFrom: string | null = null;
  /** The end of `sample.txt`, or null when there is none. */
  sample: string | null = null;

  #offset = 0;
  #ino: number | null = null;
  #seen = false;
  #sampleMtime = 0;

  constructor(
    /** The run folder. */
    readonly dir: string,
    /** Its label in legends: the path as given. */
    readonly name: string = dir.replace(/\/+$/, "") || basename(dir),
  ) {}

  get metricsPath(): string {
    return join(this.dir, "metrics.jsonl");
  }

  /** Read what changed; null when nothing did. */
  async poll(): Promise<RunChange | null> {
    const before = this.#metaKey();
    const change = await this.#pollMetrics();
    if (this.status !== "deleted") {
      await this.#pollConfig();
      await this.#pollSample();
    }
    const meta = this.#metaKey() !== before;
    if (!change && !meta) return null;
    return { reset: change?.reset ?? false, records: change?.records ?? [], meta };
  }

  /** A JSON-able summary without the records. */
  info(): RunInfo {
    return {
      name: this.name,
      status: this.status,
      skipped: this.skipped,
      skipReasons: this.skipReasons,
      config: this.config,
      configFrom: this.configFrom,
      sample: this.sample,
    };
  }

  #metaKey(): string {
    return JSON.stringify([this.status, this.skipped, this.configFrom, this.sample]);
  }

  async #pollMetrics(): Promise<{ reset: boolean; records: MetricsRecord[] } | null> {
    let stat: Deno.FileInfo;
    try {
      stat = await Deno.stat(this.metricsPath);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      if (this.#seen && !(await exists(this.dir))) this.status = "deleted";
      else if (this.status !== "deleted") this.status = "no-metrics";
      if (this.status === "deleted" || this.records.length === 0) return null;
      // The file went but the folder stayed (moved aside by a fresh run): start over.
      this.#forget();
      return { reset: true, records: [] };
    }
    this.#seen = true;
    this.status = "ok";
    let reset = false;
    if (stat.size < this.#offset || (stat.ino !== null && stat.ino !== this.#ino)) {
      reset = this.#ino !== null || this.#offset > 0;
      this.#forget();
      this.#ino = stat.ino;
    }
    if (stat.size <= this.#offset) return reset ? { reset, records: [] } : null;
    const fresh = await this.#readFrom(this.#offset, stat.size);
    return reset || fresh.length > 0 ? { reset, records: reset ? this.records : fresh } : null;
  }

  /** Parse the complete lines in bytes [from, to) of metrics.jsonl and append them. */
  async #readFrom(from: number, to: number): Promise<MetricsRecord[]> {
    const bytes = new Uint8Array(to - from);
    using file = await Deno.open(this.metricsPath, { read: true });
    await file.seek(from, Deno.SeekMode.Start);
    let got = 0;
    while (got < bytes.length) {
      const n = await file.read(bytes.subarray(got));
      if (n === null) break;
      got += n;
    }
    // Only up to the last newline: the rest is a line still being written.
    const end = bytes.subarray(0, got).lastIndexOf(10) + 1;
    if (end === 0) return [];
    this.#offset = from + end;
    const text = new TextDecoder().decode(bytes.subarray(0, end));
    const parsed = parseMetricsLines(text.split("\n"));
    this.records.push(...parsed.records);
    this.skipped += parsed.skipped;
    this.skipReasons.push(...parsed.reasons.slice(0, 3 - this.skipReasons.length));
    return parsed.records;
  }

  #forget(): void {
    this.records = [];
    this.skipped = 0;
    this.skipReasons = [];
    this.#offset = 0;
    this.#ino = null;
  }

  async #pollConfig(): Promise<void> {
    let path: string | null;
    try {
      path = latestCheckpoint(join(this.dir, "checkpoints"));
    } catch {
      return; // unreadable folder: keep what was shown
    }
    if (path === this.configFrom || path === null) return;
    try {
      const reader = await SafetensorsReader.open(path);
      try {
        this.config = JSON.parse(reader.metadata.config ?? "null");
        this.configFrom = path;
      } finally {
        reader.close();
      }
    } catch {
      // Rotated away between listing and opening, or not ours: try again next poll.
    }
  }

  async #pollSample(): Promise<void> {
    const path = join(this.dir, SAMPLE_FILE);
    try {
      const stat = await Deno.stat(path);
      const mtime = stat.mtime?.getTime() ?? 0;
      if (this.sample !== null && mtime === this.#sampleMtime) return;
      this.#sampleMtime = mtime;
      this.sample = (await Deno.readTextFile(path)).slice(-SAMPLE_CHARS);
    } catch {
      this.sample = null;
    }
  }
}

/** What the page shows about a run besides its points. */
export interface RunInfo {
  name: string;
  status: RunStatus;
  skipped: number;
  skipReasons: string[];
  config: unknown;
  configFrom: string | null;
  sample: string | null;
}

/**
 * All records of a run folder's metrics.jsonl, read once (for `deno task plot`). Throws naming
 * the file when there is none.
 */
export async function readRun(
  dir: string,
  name?: string,
): Promise<{ name: string; records: MetricsRecord[]; skipped: number; skipReasons: string[] }> {
  const run = new RunWatcher(dir, name);
  await run.poll();
  if (run.status !== "ok") throw new Error(`${run.metricsPath}: no such file (not a run folder?)`);
  return {
    name: run.name,
    records: run.records,
    skipped: run.skipped,
    skipReasons: run.skipReasons,
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

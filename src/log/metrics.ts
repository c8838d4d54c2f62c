/**
 * `metrics.jsonl`: one JSON object per line, appended and written through to the OS line by
 * line, so `tail -f` and pandas (`read_json(path, lines=True)`) see every step as it happens.
 *
 * Training lines carry `step`, `train_loss`, `lr`, `grad_norm`, `tokens_per_s` (and whatever
 * else the trainer adds); eval lines carry `step` and `val_loss`. Non-finite numbers are
 * written as `null` (JSON has no NaN).
 *
 * Resuming from a checkpoint at step S keeps the lines with `step <= S` and drops the rest: the
 * interrupted run logged steps past S that the resumed run will log again, and a file with two
 * different losses for one step would be wrong for every plot. A torn last line (killed
 * mid-write: no newline, or not a record) is dropped too, and so repaired. Starting fresh
 * empties the file (the trainer moves an earlier run's file aside first).
 */
import { dirname } from "node:path";
import { writeAtomic } from "../io/atomic.ts";

/** One line of metrics.jsonl. */
export interface MetricsRecord {
  step: number;
  /** Other fields; `undefined` ones are left out of the line. */
  [field: string]: number | string | boolean | null | undefined;
}

/** Appends records to metrics.jsonl. Only rank 0 should write. */
export class MetricsWriter {
  #file: Deno.FsFile;

  private constructor(
    readonly path: string,
    file: Deno.FsFile,
    /** Lines dropped on open (steps after the resume step, or a torn last line). */
    readonly dropped: number,
    /** Whether a torn last line was found on open (and dropped). */
    readonly torn: boolean,
  ) {
    this.#file = file;
  }

  /**
   * Open `path` for appending, creating its directory. `resumeStep` null starts a fresh file;
   * a number keeps the existing lines with `step <= resumeStep` (see the module doc).
   */
  static async open(
    path: string,
    { resumeStep }: { resumeStep: number | null },
  ): Promise<MetricsWriter> {
    await Deno.mkdir(dirname(path), { recursive: true });
    let dropped = 0, torn = false;
    if (resumeStep === null) {
      await writeAtomic(path, "");
    } else {
      const found = await parseFile(path);
      const kept = found.records.filter((r) => r.step <= resumeStep);
      torn = found.torn;
      dropped = found.lines - kept.length + (torn ? 1 : 0);
      if (dropped > 0) await writeAtomic(path, kept.map(encodeLine).join(""));
    }
    const file = await Deno.open(path, { append: true, create: true });
    return new MetricsWriter(path, file, dropped, torn);
  }

  /** Append one record as one line. */
  write(record: MetricsRecord): void {
    if (!Number.isSafeInteger(record.step) || record.step < 0) {
      throw new Error(`${this.path}: metrics record needs a non-negative integer step`);
    }
    const bytes = new TextEncoder().encode(encodeLine(record));
    for (let done = 0; done < bytes.length;) done += this.#file.writeSync(bytes.subarray(done));
  }

  close(): void {
    this.#file.close();
  }
}

/**
 * All complete records of a metrics.jsonl file (a last line still being written is ignored).
 * Errors name the file and line.
 */
export async function readMetrics(path: string): Promise<MetricsRecord[]> {
  return (await parseFile(path)).records;
}

function encodeLine(record: MetricsRecord): string {
  return JSON.stringify(record, (_k, v) => (typeof v === "number" && !isFinite(v) ? null : v)) +
    "\n";
}

async function parseFile(
  path: string,
): Promise<{ records: MetricsRecord[]; lines: number; torn: boolean }> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { records: [], lines: 0, torn: false };
    throw e;
  }
  const lines = text.split("\n");
  let torn = lines.pop() !== ""; // text after the last newline was cut mid-write
  // A last line that is not JSON is torn too (e.g. zeros a crash left after the data).
  if (!torn && lines.length > 0 && !isJson(lines.at(-1)!)) {
    lines.pop();
    torn = true;
  }
  const records = lines.map((line, i) => {
    const record = parseLine(line);
    if (typeof record === "string") throw new Error(`${path}:${i + 1}: ${record}`);
    return record;
  });
  return { records, lines: lines.length, torn };
}

function isJson(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}

/** The record on `line`, or why it is none. */
function parseLine(line: string): MetricsRecord | string {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return `not a JSON line: ${line.slice(0, 80)}`;
  }
  const step = (record as MetricsRecord | null)?.step;
  return Number.isSafeInteger(step) ? record as MetricsRecord : 'no integer "step"';
}

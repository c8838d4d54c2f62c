/**
 * A small progress reporter for long loops (prepare, training): a redrawn bar on a terminal,
 * plain periodic lines otherwise (logs, CI), and a final line.
 *
 * ```ts
 * const bar = new Progress({ label: "prepare", total: inputBytes, unit: "B" });
 * bar.update(bytesRead, { docs, tokens });   // cheap: redraws at most every `redrawMs`
 * bar.finish();                               // final line, always printed
 * ```
 *
 * Line: `label [#####.....] 45.0% 12.3 MB / 27.3 MB 4.10 MB/s | 120k docs 39.2k docs/s | ETA 0:04`.
 * The ETA comes from the main counter's rate and `total` (omitted when total is unknown). Counts
 * use SI prefixes (k, M, G); the unit "B" prints decimal megabytes etc.
 */

/** Options for {@link Progress}. */
export interface ProgressOptions {
  /** Shown first on every line. */
  label: string;
  /** Final value of the main counter, if known (enables the bar, percentage and ETA). */
  total?: number;
  /** Unit of the main counter, e.g. "B", "step" (default ""). */
  unit?: string;
  /** Redraw on a terminal, else print lines (default: `Deno.stderr.isTerminal()`). */
  tty?: boolean;
  /** Where text goes (default: stderr, synchronously). */
  write?: (text: string) => void;
  /** Clock in ms (default `performance.now`). */
  now?: () => number;
  /** Minimum ms between terminal redraws (default 100). */
  redrawMs?: number;
  /** Minimum ms between plain lines when not a terminal (default 10 000). */
  lineMs?: number;
}

const encoder = new TextEncoder();

function writeStderr(text: string): void {
  const bytes = encoder.encode(text);
  let done = 0;
  while (done < bytes.length) done += Deno.stderr.writeSync(bytes.subarray(done));
}

/** Progress of one loop: main counter with optional total, plus named side counters. */
export class Progress {
  readonly label: string;
  readonly total: number | undefined;
  readonly unit: string;
  #tty: boolean;
  #write: (text: string) => void;
  #now: () => number;
  #redrawMs: number;
  #lineMs: number;
  #start: number;
  #lastDraw = -Infinity;
  #done = 0;
  #counters: Record<string, number> = {};
  #note = "";
  #finished = false;

  constructor(options: ProgressOptions) {
    this.label = options.label;
    this.total = options.total !== undefined && options.total > 0 ? options.total : undefined;
    this.unit = options.unit ?? "";
    this.#tty = options.tty ?? Deno.stderr.isTerminal();
    this.#write = options.write ?? writeStderr;
    this.#now = options.now ?? (() => performance.now());
    this.#redrawMs = options.redrawMs ?? 100;
    this.#lineMs = options.lineMs ?? 10_000;
    this.#start = this.#now();
    this.#lastDraw = this.#start;
  }

  /** Seconds since construction. */
  get elapsed(): number {
    return (this.#now() - this.#start) / 1000;
  }

  /**
   * Set the main counter to `done` and side counters (absolute values, e.g. `{ docs: 120 }`),
   * with an optional free-text note (e.g. a loss). Draws when the throttle allows.
   */
  update(done: number, counters: Record<string, number> = {}, note?: string): void {
    this.#done = done;
    Object.assign(this.#counters, counters);
    if (note !== undefined) this.#note = note;
    const now = this.#now();
    if (now - this.#lastDraw < (this.#tty ? this.#redrawMs : this.#lineMs)) return;
    this.#lastDraw = now;
    this.#write(this.#tty ? `\r\x1b[2K${this.line()}` : `${this.line()}\n`);
  }

  /** Print the final line (clearing the bar on a terminal). Idempotent. */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#write(`${this.#tty ? "\r\x1b[2K" : ""}${this.line()}\n`);
  }

  /** The current status line. */
  line(): string {
    const secs = Math.max(this.elapsed, 1e-9);
    const parts: string[] = [];
    let head = this.label;
    if (this.total !== undefined) {
      const frac = Math.min(1, this.#done / this.total);
      const width = 20;
      const filled = Math.round(frac * width);
      head += ` [${"#".repeat(filled)}${".".repeat(width - filled)}] ${(100 * frac).toFixed(1)}%`;
      head += ` ${formatCount(this.#done, this.unit)} / ${formatCount(this.total, this.unit)}`;
    } else {
      head += ` ${formatCount(this.#done, this.unit)}`;
    }
    head += ` ${formatCount(this.#done / secs, this.unit)}/s`;
    parts.push(head);
    for (const [name, value] of Object.entries(this.#counters)) {
      parts.push(`${formatCount(value, name)} ${formatCount(value / secs, name)}/s`);
    }
    if (this.#note) parts.push(this.#note);
    if (this.total !== undefined && !this.#finished && this.#done > 0) {
      parts.push(`ETA ${formatDuration(((this.total - this.#done) * secs) / this.#done)}`);
    } else {
      parts.push(`${this.#finished ? "took" : "elapsed"} ${formatDuration(secs)}`);
    }
    return parts.join(" | ");
  }
}

/** `12.3 MB`, `4.10k docs`, `17 step`: SI prefix, 3 significant digits; unit optional. */
export function formatCount(value: number, unit = ""): string {
  const prefixes = ["", "k", "M", "G", "T", "P"];
  let i = 0;
  let v = value;
  while (Math.abs(v) >= 999.5 && i < prefixes.length - 1) {
    v /= 1000;
    i++;
  }
  const a = Math.abs(v);
  const digits = i === 0 && Number.isInteger(v) ? 0 : a < 9.995 ? 2 : a < 99.95 ? 1 : 0;
  if (unit === "B") return `${v.toFixed(digits)} ${prefixes[i]}B`;
  return `${v.toFixed(digits)}${prefixes[i]}${unit ? ` ${unit}` : ""}`;
}

/** `1:02:03`, `4:05` (minutes:seconds under an hour). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

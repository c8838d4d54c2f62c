/**
 * How `deno task bench gpu` reports and paces itself: one table row on stdout and one JSON line
 * in --out per measurement (written as it is measured, so a run cut short keeps what it had),
 * and a time budget shared by the stages in order.
 */
import type { Gpu } from "../../gpu/device.ts";
import { type Dispatch, submit } from "../../gpu/kernel.ts";
import { timeGpu } from "./kernels.ts";

/** One measurement (or one skipped one): the JSON line `bench gpu` writes. */
export interface Measurement {
  /** The stage that measured it: adapter, ceilings, matmul, ops, step, pytorch. */
  stage: string;
  /** What was measured, e.g. "fc dweight" or "fma f32". */
  name: string;
  precision?: string;
  /** Sizes, e.g. "16384 x 3072 x 768" or "B=16 T=1024". */
  shape?: string;
  ms?: number;
  tflops?: number;
  gbps?: number;
  /** Achieved FLOP rate over the measured f32 FMA ceiling (0..1). */
  share_f32_ceiling?: number;
  tokens_per_s?: number;
  /** Model FLOPs utilization against the adapter's f32 peak from the spec sheet, if known. */
  mfu?: number;
  /** Why it was not measured. */
  skipped?: string;
  /** The error that stopped this measurement. */
  error?: string;
  [key: string]: unknown;
}

/** Prints measurements as table rows and appends them to a JSON-lines file. */
export class Reporter {
  #file: Deno.FsFile | null;
  #encoder = new TextEncoder();
  #run = new Date().toISOString();
  /** Every measurement so far, in order. */
  readonly all: Measurement[] = [];

  private constructor(file: Deno.FsFile | null) {
    this.#file = file;
  }

  /** A reporter appending to `out` (created if missing; earlier lines are kept), or none. */
  static async open(out: string | undefined): Promise<Reporter> {
    if (out === undefined) return new Reporter(null);
    try {
      return new Reporter(await Deno.open(out, { append: true, create: true }));
    } catch (e) {
      throw new Error(`--out ${out}: cannot open for appending: ${(e as Error).message}`);
    }
  }

  /** Prints the stage's heading. */
  stage(name: string, note = ""): void {
    console.log(`\n== ${name}${note ? `: ${note}` : ""}`);
  }

  /** Prints one table row and writes the JSON line (with this run's start time as `run`). */
  record(m: Measurement): void {
    this.all.push(m);
    console.log(row(m));
    this.#file?.writeSync(this.#encoder.encode(JSON.stringify({ run: this.#run, ...m }) + "\n"));
  }

  /** Measurements that failed with an error. */
  get failures(): number {
    return this.all.filter((m) => m.error !== undefined).length;
  }

  /** Records that `name` was not measured, and why. */
  skip(stage: string, name: string, reason: string, extra: Partial<Measurement> = {}): void {
    this.record({ stage, name, ...extra, skipped: reason });
  }

  close(): void {
    this.#file?.close();
    this.#file = null;
  }
}

function row(m: Measurement): string {
  const label = [m.name, m.precision, m.shape].filter(Boolean).join("  ");
  if (m.skipped) return `  ${label.padEnd(58)} skipped: ${m.skipped}`;
  if (m.error) return `  ${label.padEnd(58)} FAILED: ${m.error}`;
  const cells: string[] = [];
  if (m.ms !== undefined) cells.push(`${fixed(m.ms, 3)} ms`.padStart(12));
  if (m.tflops !== undefined) cells.push(flopRate(m.tflops).padStart(15));
  if (m.gbps !== undefined) cells.push(`${fixed(m.gbps, 3)} GB/s`.padStart(15));
  if (m.tokens_per_s !== undefined) cells.push(`${m.tokens_per_s.toFixed(0)} tok/s`.padStart(15));
  if (m.share_f32_ceiling !== undefined) {
    cells.push(`${(m.share_f32_ceiling * 100).toFixed(1)}% of f32 FMA`.padStart(18));
  }
  if (m.mfu !== undefined) cells.push(`MFU ${(m.mfu * 100).toFixed(1)}%`);
  if (m.note) cells.push(String(m.note));
  return `  ${label.padEnd(58)} ${cells.join(" ")}`;
}

/** TFLOP/s when it is one or more, else GFLOP/s (a software adapter). */
function flopRate(tflops: number): string {
  return tflops >= 1 ? `${tflops.toFixed(2)} TFLOP/s` : `${fixed(tflops * 1e3, 2)} GFLOP/s`;
}

/** `digits` significant digits (all of them at 100 and above), never in exponent form. */
function fixed(x: number, digits: number): string {
  return x >= 100 ? x.toFixed(0) : String(Number(x.toPrecision(digits)));
}

/**
 * The run's time budget, handed out stage by stage: a stage gets the time left times its weight
 * over the weights of the stages not yet run, so time a stage does not use goes to later ones.
 */
export class Budget {
  #end: number;
  #weights: Map<string, number>;
  #stageEnd = 0;

  /** `seconds` in all, shared by stages with the given weights. */
  constructor(seconds: number, weights: Record<string, number>) {
    this.#end = performance.now() + seconds * 1000;
    this.#weights = new Map(Object.entries(weights));
  }

  /** Starts stage `name`: returns its seconds, or 0 when fewer than `minS` are left for it. */
  begin(name: string, minS = 0): number {
    const weight = this.#weights.get(name);
    if (weight === undefined) throw new Error(`bench gpu: no budget weight for stage "${name}"`);
    const total = [...this.#weights.values()].reduce((a, b) => a + b, 0);
    this.#weights.delete(name);
    const seconds = this.totalLeft() * weight / total;
    this.#stageEnd = performance.now() + seconds * 1000;
    return seconds >= minS && seconds > 0 ? seconds : 0;
  }

  /** Seconds left to the current stage. */
  left(): number {
    return Math.max(0, (this.#stageEnd - performance.now()) / 1000);
  }

  /** Seconds left to the whole run. */
  totalLeft(): number {
    return Math.max(0, (this.#end - performance.now()) / 1000);
  }
}

/** What a stage's measurements share. */
export interface StageContext {
  gpu: Gpu;
  report: Reporter;
  budget: Budget;
  /** Timed trials per measurement (the median is kept). */
  trials: number;
  /** The measured f32 FMA ceiling in TFLOP/s and copy rate in GB/s, when measured. */
  f32Ceiling?: number;
  copyGbps?: number;
  /**
   * GPU seconds each submit should take at least: a kernel that runs faster at the ceilings is
   * repeated in its pass, so that timeGpu's ~12 ms wait per batch stays small beside it.
   */
  minSubmitS: number;
}

/** One timed list of dispatches: its FLOPs (compute-bound) or bytes moved (memory-bound). */
export interface DispatchMeasurement extends Measurement {
  flops?: number;
  bytes?: number;
  /** Copies of the list per pass, instead of {@link repeats}'s choice. */
  repeats?: number;
}

/**
 * How many times to repeat a measured list in one pass so that it takes at least
 * `ctx.minSubmitS` even at the measured ceilings (1 when they are unknown).
 */
function repeats(ctx: StageContext, flops?: number, bytes?: number): number {
  let fastest = 0;
  if (flops !== undefined && ctx.f32Ceiling) fastest = flops / (ctx.f32Ceiling * 1e12);
  if (bytes !== undefined && ctx.copyGbps) fastest = bytes / (ctx.copyGbps * 1e9);
  return fastest > 0 ? Math.min(1000, Math.max(1, Math.ceil(ctx.minSubmitS / fastest))) : 1;
}

/**
 * Times the dispatches `make` prepares (submitted in one pass, repeated as {@link repeats}
 * says) and records the rate of one; records a skip when the stage's budget is spent, and an
 * error, without stopping the run, when one happens (the run is one call on a lent machine:
 * what else it measures still counts).
 */
export async function measureDispatches(
  ctx: StageContext,
  m: DispatchMeasurement,
  make: () => Dispatch[] | Promise<Dispatch[]>,
): Promise<number | undefined> {
  const { flops, bytes, repeats: fixedRepeats, ...line } = m;
  if (!ctx.budget.left()) {
    ctx.report.record({ ...line, skipped: "the stage's time budget is spent" });
    return undefined;
  }
  let dispatches: Dispatch[] = [];
  try {
    dispatches = await make();
    const k = fixedRepeats ?? repeats(ctx, flops, bytes);
    const pass = Array.from({ length: k }, () => dispatches).flat();
    const s = await timeGpu(ctx.gpu, () => submit(ctx.gpu, pass), ctx.trials) / k;
    const rates: Partial<Measurement> = {};
    if (flops !== undefined) {
      rates.tflops = flops / s / 1e12;
      if (ctx.f32Ceiling) rates.share_f32_ceiling = rates.tflops / ctx.f32Ceiling;
    }
    if (bytes !== undefined) rates.gbps = bytes / s / 1e9;
    ctx.report.record({ ...line, ms: s * 1e3, ...rates, repeats: k });
    return s;
  } catch (e) {
    ctx.report.record({ ...line, error: (e as Error).message.split("\n")[0] });
    return undefined;
  } finally {
    for (const d of dispatches) d.destroy();
  }
}

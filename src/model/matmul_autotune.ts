/**
 * Matmul autotuning: for each product (adapter, kernel sources, operand types and layouts,
 * M, N, K) the fastest of a few configurations (tile variants of MATMUL_VARIANTS that suit the
 * adapter, times split-K choices), timed on the device and kept in an on-disk JSON cache so
 * that later runs, and reruns meant to be bit-identical, take the same configuration.
 *
 * The cache is `$REPGPT_CACHE_DIR/matmul_autotune.json`, else under `$XDG_CACHE_HOME/repgpt`
 * or `~/.cache/repgpt`; it is written atomically (src/io/atomic.ts) after merging what other
 * processes wrote meanwhile. A file that cannot be read or parsed is reported (naming it) and
 * ignored: its products are timed again and the file replaced. Each entry keeps the tiles
 * themselves, not only a variant's name, so a renamed or retuned variant cannot change what
 * a cached product computes; a change of the kernel sources changes every key.
 */
import { join } from "node:path";
import type { Gpu } from "../gpu/device.ts";
import { writeAtomic } from "../io/atomic.ts";
import { MATMUL_VARIANTS, type MatmulTiles, tileExtent } from "./matmul_tiles.ts";
import { type GemmProduct, type MatmulConfig, typesKey } from "./matmul_types.ts";
import { defaultSplitK, MAX_SPLIT_K } from "./matmul_split_k.ts";
import { MATMUL_WGSL as matmulSource } from "./matmul_source.ts";
import splitKSource from "../../kernels/matmul_split_k.wgsl" with { type: "text" };

const CACHE_VERSION = 1;
const CACHE_FILE = "matmul_autotune.json";

/** A cached decision: the configuration, its time and the others' (fastest first). */
export interface AutotuneEntry extends MatmulConfig {
  ms: number;
  runnersUp: { config: string; ms: number }[];
}

/** A configuration to time, with the name the log shows. */
export interface Candidate {
  name: string;
  config: MatmulConfig;
}

/** The cache file: `REPGPT_CACHE_DIR`, else `XDG_CACHE_HOME/repgpt`, else `~/.cache/repgpt`. */
export function autotuneCachePath(env: (name: string) => string | undefined): string {
  const dir = env("REPGPT_CACHE_DIR") ||
    join(env("XDG_CACHE_HOME") || join(env("HOME") || ".", ".cache"), "repgpt");
  return join(dir, CACHE_FILE);
}

/** FNV-1a of the kernel sources: a kernel change makes every cached decision stale. */
const SOURCE_HASH = (() => {
  let h = 0x811c9dc5;
  for (const ch of matmulSource + splitKSource) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
})();

/**
 * The cache key of a product: the adapter and its driver, the kernel sources, what the op
 * compiles (storage type, f16 products, binding limit), operand types, layouts and shape.
 */
export function productKey(
  gpu: Gpu,
  op: { type: string; f16Products: boolean; maxBinding: number },
  p: GemmProduct,
): string {
  return [
    gpu.adapterKey,
    `src ${SOURCE_HASH}`,
    `${op.type}${op.f16Products ? " f16 products" : ""} binding ${op.maxBinding}`,
    `${typesKey(p.types ?? { a: "f32", b: "f32", c: "f32" })} ${p.aLayout}@${p.bLayout}`,
    `${p.M}x${p.N}x${p.K}`,
  ].join(" | ");
}

/** "regs S=2", or the tiles themselves when no variant has them. */
export function configName(c: MatmulConfig): string {
  const same = Object.entries(MATMUL_VARIANTS).find(([, t]) =>
    JSON.stringify(t) === JSON.stringify(c.tiles)
  );
  return `${same ? same[0] : JSON.stringify(c.tiles)} S=${c.splitK}`;
}

/**
 * What to time for a product: the variants whose entry suits the adapter ("regs" on CPU
 * adapters, "tiled" on GPUs; BK <= 32 when two f16 operands multiply in f16), each with no
 * split, the default split for a GPU and twice it (S >= 2), where slices keep >= 16 of K.
 */
export function candidates(gpu: Gpu, p: GemmProduct, f16Products: boolean): Candidate[] {
  const entry = gpu.isFallback ? "regs" : "tiled";
  const out: Candidate[] = [];
  for (const tiles of Object.values(MATMUL_VARIANTS)) {
    if (tiles.entry !== entry || (f16Products && tiles.BK > 32)) continue;
    const { BM, BN } = tileExtent(tiles);
    const workgroups = Math.ceil(p.M / BM) * Math.ceil(p.N / BN);
    const s = Math.max(2, defaultSplitK(false, workgroups, p.K));
    const splits = [...new Set([1, s, 2 * s])].filter((S) =>
      S === 1 || (S <= MAX_SPLIT_K && p.K / S >= 16)
    );
    for (const splitK of splits) {
      out.push({ name: configName({ tiles, splitK }), config: { tiles, splitK } });
    }
  }
  return out;
}

/** One log line for a decision. */
export function describeDecision(p: GemmProduct, e: AutotuneEntry, how: string): string {
  const others = e.runnersUp.map((r) => `${r.config} ${r.ms.toFixed(3)} ms`).join(", ");
  return `matmul autotune: ${p.label ?? "matmul"} ${p.M}x${p.N}x${p.K} ` +
    `${typesKey(p.types ?? { a: "f32", b: "f32", c: "f32" })} ${p.aLayout}@${p.bLayout}: ` +
    `${configName(e)} ${e.ms.toFixed(3)} ms (${how}${others ? `; runners-up ${others}` : ""})`;
}

/** The entries of the cache file, and writing new ones back. */
export class AutotuneCache {
  private constructor(readonly path: string, readonly entries: Map<string, AutotuneEntry>) {}

  /** Reads `path` (missing: empty); a bad file or entry is reported through `log` and skipped. */
  static async open(path: string, log: (line: string) => void): Promise<AutotuneCache> {
    return new AutotuneCache(path, await readEntries(path, log));
  }

  /**
   * Writes `decided` into the file, over what it holds now (another process may have added
   * entries since it was read); with `keepExisting`, an entry already in the file stays.
   * Returns the entries in force for `decided`'s keys (ours where the write failed). A failure
   * is reported, not thrown: the cache only saves time.
   */
  async save(
    decided: Map<string, AutotuneEntry>,
    log: (line: string) => void,
    keepExisting = false,
  ): Promise<Map<string, AutotuneEntry>> {
    const inForce = new Map(decided);
    try {
      const entries = await readEntries(this.path, () => {});
      for (const [k, v] of decided) {
        if (keepExisting && entries.has(k)) inForce.set(k, entries.get(k)!);
        else entries.set(k, v);
      }
      await Deno.mkdir(join(this.path, ".."), { recursive: true });
      const json = { version: CACHE_VERSION, entries: Object.fromEntries(entries) };
      await writeAtomic(this.path, JSON.stringify(json, null, 1) + "\n");
      for (const [k, v] of inForce) this.entries.set(k, v);
    } catch (e) {
      log(`matmul autotune: cannot write the cache ${this.path}: ${(e as Error).message}`);
    }
    return inForce;
  }
}

async function readEntries(
  path: string,
  log: (line: string) => void,
): Promise<Map<string, AutotuneEntry>> {
  const entries = new Map<string, AutotuneEntry>();
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      log(`matmul autotune: ignoring the cache ${path}: ${(e as Error).message}; retuning`);
    }
    return entries;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    log(
      `matmul autotune: ignoring the cache ${path}: not JSON (${(e as Error).message}); retuning`,
    );
    return entries;
  }
  const file = json as { version?: unknown; entries?: unknown };
  if (file?.version !== CACHE_VERSION || typeof file.entries !== "object" || !file.entries) {
    log(
      `matmul autotune: ignoring the cache ${path}: not a version ${CACHE_VERSION} cache; retuning`,
    );
    return entries;
  }
  for (const [key, value] of Object.entries(file.entries)) {
    if (validEntry(value)) entries.set(key, value);
    else log(`matmul autotune: ignoring a bad entry of the cache ${path}: ${key}`);
  }
  return entries;
}

function validEntry(v: unknown): v is AutotuneEntry {
  const e = v as AutotuneEntry;
  if (typeof e !== "object" || !e || !Number.isInteger(e.splitK) || e.splitK < 1) return false;
  if (typeof e.ms !== "number" || !Array.isArray(e.runnersUp)) return false;
  try {
    tileExtent(e.tiles as MatmulTiles);
    return e.tiles.entry === "regs" || e.tiles.entry === "tiled";
  } catch {
    return false;
  }
}

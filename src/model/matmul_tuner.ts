/**
 * One matmul op's autotuning state: which configuration each product takes, what is still
 * undecided, and the timing of candidates (src/model/matmul_autotune.ts has the cache file,
 * the keys and the candidate list). "off" always gives the op's default configuration;
 * "cached" takes the cache file's decisions (compiled at creation, so the synchronous gemm can
 * use them at once) and times what it lacks; "refresh" times every product again.
 */
import type { AutotuneMode, Gpu } from "../gpu/device.ts";
import { createBuffer } from "../gpu/buffer.ts";
import type { Dispatch } from "../gpu/kernel.ts";
import { storageBytes } from "../gpu/storage.ts";
import type { MatmulTiles } from "./matmul_tiles.ts";
import type { MatmulKernels } from "./matmul_kernels.ts";
import {
  F32_GEMM,
  type GemmDesc,
  type GemmProduct,
  type MatmulConfig,
  type MatmulOp,
} from "./matmul_types.ts";
import {
  AutotuneCache,
  autotuneCachePath,
  type AutotuneEntry,
  candidates,
  describeDecision,
  productKey,
} from "./matmul_autotune.ts";
import { timeDispatches } from "./dispatch_timer.ts";

/** What the tuner uses of its op. */
export interface TunedOp {
  /** What the op compiles, part of every cache key (see {@link productKey}). */
  key: { type: string; f16Products: boolean; maxBinding: number };
  kernels: MatmulKernels;
  /** The configuration of a product that tuning has not decided. */
  defaultConfig(p: GemmProduct): MatmulConfig;
  /** The dispatches of a product in a given configuration. */
  gemmWith(d: GemmDesc, config: MatmulConfig): Dispatch[];
}

/** The op's tuning methods, as {@link MatmulOp} exposes them. */
export type MatmulTuner = Pick<MatmulOp, "configFor" | "pending" | "tune">;

/** The tuner of `op` in `mode`; reads the cache and compiles its tiles unless "off". */
export async function createMatmulTuner(
  gpu: Gpu,
  op: TunedOp,
  { mode, log }: { mode: AutotuneMode; log: (line: string) => void },
): Promise<MatmulTuner> {
  if (mode === "off") {
    return { configFor: op.defaultConfig, pending: () => [], tune: () => Promise.resolve(false) };
  }
  const keyOf = (p: GemmProduct) => productKey(gpu, op.key, p);
  // Decisions by product key, and the products gemm served undecided.
  const chosen = new Map<string, MatmulConfig>();
  const pending = new Map<string, GemmProduct>();
  const cache = await AutotuneCache.open(autotuneCachePath((n) => Deno.env.get(n)), log);
  if (mode === "cached") {
    // Compile the tiles this adapter's cached decisions use, so that gemm can take them.
    const prefix = keyOf({ M: 0, N: 0, K: 0, aLayout: "mk", bLayout: "nk" }).split(" | ")
      .slice(0, 3).join(" | ");
    const tiles = new Map<string, MatmulTiles>();
    for (const [k, e] of cache.entries) {
      if (k.startsWith(`${prefix} | `)) tiles.set(JSON.stringify(e.tiles), e.tiles);
    }
    await Promise.all([...tiles.values()].map((t) => op.kernels.compile(t)));
  }

  /** The configuration of `p` now; in "cached" mode a cached one is taken (and logged) here. */
  function configFor(p: GemmProduct): MatmulConfig {
    const key = keyOf(p);
    const known = chosen.get(key);
    if (known) return known;
    const cached = mode === "cached" ? cache.entries.get(key) : undefined;
    if (cached && op.kernels.isCompiled(cached.tiles, p.types ?? F32_GEMM)) {
      chosen.set(key, cached);
      log(describeDecision(p, cached, `cached in ${cache.path}`));
      return cached;
    }
    pending.set(key, p);
    return op.defaultConfig(p);
  }

  async function tune(products = [...pending.values()]): Promise<boolean> {
    const todo = products.filter((p) => !chosen.has(keyOf(p)));
    const timed = new Map<string, AutotuneEntry>();
    for (const p of todo) {
      const key = keyOf(p);
      if (!(mode === "cached" && cache.entries.has(key)) && !timed.has(key)) {
        timed.set(key, await time(p));
      }
    }
    // In "cached" mode an entry another process wrote meanwhile wins over ours, so processes
    // sharing a cache run the same configurations.
    const saved = timed.size ? await cache.save(timed, log, mode === "cached") : new Map();
    let changed = false;
    for (const p of todo) {
      const key = keyOf(p);
      if (chosen.has(key)) continue;
      const entry = saved.get(key) ?? timed.get(key) ?? cache.entries.get(key)!;
      const how = timed.get(key) === entry ? "timed" : `cached in ${cache.path}`;
      const before = JSON.stringify(op.defaultConfig(p));
      await op.kernels.compile(entry.tiles, [p.types ?? F32_GEMM]);
      chosen.set(key, { tiles: entry.tiles, splitK: entry.splitK });
      log(describeDecision(p, entry, how));
      const now = JSON.stringify({ tiles: entry.tiles, splitK: entry.splitK });
      if (pending.delete(key) && now !== before) changed = true;
    }
    return changed;
  }

  /** Times each candidate configuration of `p` on scratch operands of its shape. */
  async function time(p: GemmProduct): Promise<AutotuneEntry> {
    const t = p.types ?? F32_GEMM;
    const [a, b, c] = [
      createBuffer(gpu, storageBytes(t.a, p.M * p.K), "matmul autotune a"),
      createBuffer(gpu, storageBytes(t.b, p.K * p.N), "matmul autotune b"),
      createBuffer(gpu, storageBytes(t.c, p.M * p.N), "matmul autotune c"),
    ];
    try {
      const timed: { config: MatmulConfig; name: string; ms: number }[] = [];
      for (const { name, config } of candidates(gpu, p, op.kernels.inF16(t))) {
        await op.kernels.compile(config.tiles, [t]);
        // Packed operands of the product's shape: `p` may be a gemm call's whole descriptor,
        // whose offsets and leading dimensions would reach past these buffers.
        const { M, N, K, aLayout, bLayout, label } = p;
        const desc = { M, N, K, aLayout, bLayout, label, types: t, a, b, c };
        const dispatches = op.gemmWith(desc, config);
        try {
          timed.push({ config, name, ms: await timeDispatches(gpu, dispatches) });
        } finally {
          for (const d of dispatches) d.destroy();
        }
      }
      timed.sort((x, y) => x.ms - y.ms);
      const [best, ...rest] = timed;
      return {
        ...best.config,
        ms: best.ms,
        runnersUp: rest.map((r) => ({ config: r.name, ms: r.ms })),
      };
    } finally {
      for (const x of [a, b, c]) x.destroy();
    }
  }

  return { configFor, pending: () => [...pending.values()], tune };
}

/**
 * Matrix products on the GPU: GPT-2's linear layers (forward, dinp, dweight, dbias) and the
 * general product {@link MatmulOp.gemm} they are built on, which the classifier also uses.
 *
 * Any operand may be larger than one storage binding (wte is 154 MB, lavapipe binds 128 MiB):
 * a product is split into pieces over M, N or K so that every piece binds at most
 * `maxBinding` bytes of each operand in a window (src/gpu/window.ts) whose offset remainder
 * travels as an element offset in the kernel's params. Pieces over K accumulate into the
 * output, in a fixed order. On CPU adapters a long K is also split into passes (see
 * matmul_tiles.ts).
 *
 * Each operand is stored as f32, bf16 or f16 ({@link GemmTypes}); the products compute in f32,
 * except that a product of two f16 operands computes in f16 on a device with `shader-f16`
 * (packed f16 math runs at twice the f32 rate on most GPUs), with f32 accumulators flushed
 * every `tiles.BK` products (kernels/matmul.wgsl). The op compiles the type combinations its
 * storage type needs ({@link gemmTypeSets}).
 */
import type { Gpu } from "../gpu/device.ts";
import { type Binding, createBuffer } from "../gpu/buffer.ts";
import { bindWindow, rowsPerWindow } from "../gpu/window.ts";
import { type Dispatch, Kernel } from "../gpu/kernel.ts";
import { elementBytes, specializeStorage, type StorageType } from "../gpu/storage.ts";
import { defaultTiles, type MatmulTiles, tileExtent } from "./matmul_tiles.ts";
import {
  F32_GEMM,
  type GemmDesc,
  type GemmProduct,
  type GemmTypes,
  gemmTypeSets,
  type MatmulConfig,
  type MatmulOp,
  type MatmulOptions,
  typesKey,
} from "./matmul_types.ts";
import {
  createSplitKSum,
  defaultSplitK,
  kSlices,
  SPLIT_K_SCRATCH_BYTES,
} from "./matmul_split_k.ts";
import { createMatmulKernels } from "./matmul_kernels.ts";
import { createMatmulTuner } from "./matmul_tuner.ts";
import { MATMUL_WGSL as source } from "./matmul_source.ts";

export type {
  ALayout,
  BLayout,
  GemmDesc,
  GemmProduct,
  GemmTypes,
  MatmulBackwardBindings,
  MatmulConfig,
  MatmulForwardBindings,
  MatmulOp,
  MatmulOptions,
  MatmulShape,
} from "./matmul_types.ts";
export { gemmTypeSets } from "./matmul_types.ts";

const MAX_GRID = 65535;
const BIAS_WX = 32;
const BIAS_WY = 8;

/**
 * Compiles the matmul kernels. Each product takes a configuration ({@link MatmulConfig}):
 * `options.tiles` and `options.splitK` when given, else the tuned one when autotuning is on
 * and has decided the product, else the default tiles with {@link defaultSplitK}.
 */
export async function createMatmul(gpu: Gpu, options: MatmulOptions = {}): Promise<MatmulOp> {
  const baseTiles = options.tiles ?? defaultTiles(gpu);
  const maxBinding = Math.min(options.maxBinding ?? gpu.maxBinding, gpu.maxBinding);
  const type = options.type ?? "f32";
  const typeSets = gemmTypeSets(type);
  const fixed = options.tiles !== undefined || options.splitK !== undefined;
  const mode = fixed ? "off" : options.autotune ?? gpu.autotune;
  const log = options.log ?? ((line: string) => console.error(line));
  const f16Products = type === "f16" && gpu.hasF16 && options.f16Products !== false;
  checkTiles(baseTiles);

  function checkTiles(tiles: MatmulTiles) {
    tileExtent(tiles);
    if (f16Products && tiles.BK > 32) {
      throw new RangeError(
        `matmul tiles: BK = ${tiles.BK} with f16 products would sum more than 32 of them in f16`,
      );
    }
  }

  const kernels = createMatmulKernels(gpu, typeSets, f16Products);
  await kernels.compile(baseTiles);

  // dbias (f32) from dout stored as `type`.
  const biasTypes: GemmTypes = { a: type, b: "f32", c: "f32" };
  const biasKernel = await Kernel.create(gpu, {
    label: "matmul bias_backward",
    code: specializeStorage(source, { ...biasTypes, bias: "f32" }),
    entryPoint: "bias_backward",
  });
  const noBias = createBuffer(gpu, 16, "matmul no-bias placeholder");
  // Split-K's sum, where a product may be split: on GPUs, or when asked for or tuned.
  const mayUseSplit = !gpu.isFallback || (options.splitK ?? 1) > 1 || mode !== "off";
  const splitSum = await createSplitKSum(gpu, mayUseSplit ? typeSets : []);
  const scratchBytes = Math.min(SPLIT_K_SCRATCH_BYTES, maxBinding);

  function defaultConfig(p: GemmProduct): MatmulConfig {
    const { BM, BN } = tileExtent(baseTiles);
    const workgroups = Math.ceil(p.M / BM) * Math.ceil(p.N / BN);
    return {
      tiles: baseTiles,
      splitK: options.splitK ?? defaultSplitK(gpu.isFallback, workgroups, p.K),
    };
  }

  const tuner = await createMatmulTuner(gpu, {
    key: { type, f16Products, maxBinding },
    kernels,
    defaultConfig,
    gemmWith,
  }, { mode, log });

  /**
   * Largest piece of `rows` rows of an operand (row length `cols`, stride `ld`, elements of
   * `type`) to bind.
   */
  function rowsPerPiece(
    what: string,
    rows: number,
    cols: number,
    ld: number,
    tile: number,
    type: StorageType,
  ) {
    const e = elementBytes(type);
    const r = rowsPerWindow(what, rows, cols, ld, maxBinding, gpu.offsetAlignment, e);
    return r > tile && r < rows ? r - r % tile : r; // whole tiles, unless one piece does
  }

  function gemm(d: GemmDesc): Dispatch[] {
    return gemmWith(d, tuner.configFor(d));
  }

  function gemmWith(d: GemmDesc, config: MatmulConfig): Dispatch[] {
    const { M, N, K } = d;
    const tiles = config.tiles;
    const { BM, BN, kChunk } = tileExtent(tiles);
    const label = d.label ?? "matmul";
    for (const [k, v] of Object.entries({ M, N, K })) {
      if (!Number.isInteger(v) || v < (k === "K" ? 1 : 0)) {
        throw new RangeError(`${label}: ${k}=${v} is not a valid size`);
      }
    }
    if (M === 0 || N === 0) return [];
    const types = d.types ?? F32_GEMM;
    const entry = kernels.entriesFor(tiles, types);
    if (!typeSets.some((t) => typesKey(t) === typesKey(types))) {
      throw new Error(
        `${label}: operand types ${typesKey(types)} (a,b,c) are not compiled for storage ` +
          `"${type}" (see gemmTypeSets)`,
      );
    }
    const aKM = d.aLayout === "km";
    const bNK = d.bLayout === "nk";
    const lda = d.lda ?? (aKM ? M : K);
    const ldb = d.ldb ?? (bNK ? K : N);
    const ldc = d.ldc ?? N;
    // Piece sizes: each operand limits the dimension that indexes its stored rows.
    let pm = Math.min(M, MAX_GRID * BM), pn = Math.min(N, MAX_GRID * BN), pk = K;
    const aRows = rowsPerPiece(
      `${label}: a`,
      aKM ? K : M,
      aKM ? M : K,
      lda,
      aKM ? tiles.BK : BM,
      types.a,
    );
    if (aKM) pk = Math.min(pk, aRows);
    else pm = Math.min(pm, aRows);
    const bRows = rowsPerPiece(
      `${label}: b`,
      bNK ? N : K,
      bNK ? K : N,
      ldb,
      bNK ? BN : tiles.BK,
      types.b,
    );
    if (bNK) pn = Math.min(pn, bRows);
    else pk = Math.min(pk, bRows);
    pm = Math.min(pm, rowsPerPiece(`${label}: c`, M, N, ldc, BM, types.c));
    const scattered = (aKM && lda > BM) || (!bNK && ldb > BN);
    if (scattered && pk > kChunk) {
      // Passes of equal length (multiples of 4 keep the 16-byte loads) rather than a short tail.
      const passes = Math.ceil(K / kChunk);
      pk = Math.min(kChunk, Math.ceil(K / passes / 4) * 4);
    }
    const layout = `${d.aLayout}@${d.bLayout}`;
    const dispatches: Dispatch[] = [];
    for (let k0 = 0; k0 < K; k0 += pk) {
      const kc = Math.min(pk, K - k0);
      const first = k0 === 0;
      for (let m0 = 0; m0 < M; m0 += pm) {
        const mc = Math.min(pm, M - m0);
        for (let n0 = 0; n0 < N; n0 += pn) {
          const nc = Math.min(pn, N - n0);
          const ta = types.a, tb = types.b;
          const a = aKM
            ? window(`${label}: a`, d.a, d.aOffset ?? 0, k0, kc, m0, mc, lda, ta)
            : window(`${label}: a`, d.a, d.aOffset ?? 0, m0, mc, k0, kc, lda, ta);
          const b = bNK
            ? window(`${label}: b`, d.b, d.bOffset ?? 0, n0, nc, k0, kc, ldb, tb)
            : window(`${label}: b`, d.b, d.bOffset ?? 0, k0, kc, n0, nc, ldb, tb);
          const c = window(`${label}: c`, d.c, d.cOffset ?? 0, m0, mc, n0, nc, ldc, types.c);
          const hasBias = first && d.bias != null;
          const bias = hasBias
            ? window(`${label}: bias`, d.bias!, d.biasOffset ?? 0, 0, 1, n0, nc, nc, tb)
            : null;
          const accumulate = !first || !!d.accumulate;
          // 16-byte loads need K, the dimensions loaded as vec4, leading dimensions and
          // offsets to be multiples of 4 (K slices start at multiples of 4).
          const vec4 = entry.length > 1 && kc % 4 === 0 && a.offset % 4 === 0 &&
            b.offset % 4 === 0 &&
            lda % 4 === 0 && ldb % 4 === 0 && (!aKM || mc % 4 === 0) && (bNK || nc % 4 === 0);
          const entryPoint = entry[vec4 ? 1 : 0];
          const grid = [Math.ceil(nc / BN), Math.ceil(mc / BM)] as const;
          const { kSlice, slices } = kSlices(config.splitK, kc, mc, nc, scratchBytes);
          if (slices === 1) {
            const kernel = kernels.get(tiles, entryPoint, types, layout);
            const params = new Uint32Array([
              ...[mc, nc, kc, lda, ldb, ldc, a.offset, b.offset, c.offset, bias?.offset ?? 0],
              ...[accumulate ? 1 : 0, hasBias ? 1 : 0, kc, 0],
            ]);
            const bindings = [c.range, a.range, b.range, bias?.range ?? noBias];
            dispatches.push(kernel.bind(grid, bindings, params));
            continue;
          }
          // Split-K: the slices' products into the scratch (slices, mc, nc), then their sum.
          const partialTypes = { ...types, c: "f32" as const };
          const kernel = kernels.get(tiles, entryPoint, partialTypes, layout);
          const scratch = splitSum.scratch(slices * mc * nc * 4);
          const params = new Uint32Array([
            ...[mc, nc, kc, lda, ldb, nc, a.offset, b.offset, 0, 0, 0, 0],
            ...[kSlice, mc * nc],
          ]);
          dispatches.push(
            kernel.bind([...grid, slices], [scratch, a.range, b.range, noBias], params),
            splitSum.sum({
              c,
              scratch,
              bias,
              noBias,
              mc,
              nc,
              ldc,
              slices,
              accumulate,
              cType: types.c,
              biasType: tb,
            }),
          );
        }
      }
    }
    return dispatches;
  }

  function window(
    what: string,
    binding: Binding,
    base: number,
    row0: number,
    rows: number,
    col0: number,
    cols: number,
    ld: number,
    type: StorageType,
  ) {
    const start = base + row0 * ld + col0;
    const count = (rows - 1) * ld + cols;
    return bindWindow(what, binding, start, count, gpu.offsetAlignment, elementBytes(type));
  }

  function biasBackward(b: { dbias: Binding; dout: Binding }, s: { N: number; OC: number }) {
    const pieceRows = rowsPerPiece("matmul bias_backward: dout", s.N, s.OC, s.OC, BIAS_WY, type);
    const dispatches: Dispatch[] = [];
    for (let r0 = 0; r0 < s.N; r0 += pieceRows) {
      const rows = Math.min(pieceRows, s.N - r0);
      const dout = window("bias_backward: dout", b.dout, 0, r0, rows, 0, s.OC, s.OC, type);
      const dbias = window("bias_backward: dbias", b.dbias, 0, 0, 1, 0, s.OC, s.OC, "f32");
      const params = new Uint32Array(14); // matmul.wgsl's Params, in part
      params.set([rows, s.OC, 0, s.OC, 0, 0, dout.offset, 0, dbias.offset]);
      dispatches.push(
        biasKernel.bind([Math.ceil(s.OC / BIAS_WX)], [dbias.range, dout.range], params),
      );
    }
    return dispatches;
  }

  return {
    tiles: baseTiles,
    type,
    f16Products,
    gemm,
    configFor: tuner.configFor,
    pending: tuner.pending,
    tune: tuner.tune,
    biasBackward,
    forward(b, s) {
      return gemm({
        label: "matmul forward",
        c: b.out,
        a: b.inp,
        b: b.weight,
        bias: b.bias,
        M: s.N,
        N: s.OC,
        K: s.C,
        aLayout: "mk",
        bLayout: "nk",
        types: { a: type, b: type, c: type },
      });
    },
    backward(b, s) {
      const out: Dispatch[] = [];
      if (b.dinp) {
        out.push(...gemm({
          label: "matmul backward dinp",
          c: b.dinp,
          a: b.dout,
          b: b.weight,
          M: s.N,
          N: s.C,
          K: s.OC,
          aLayout: "mk",
          bLayout: "kn",
          accumulate: s.accumulateDinp ?? false,
          types: { a: type, b: type, c: type },
        }));
      }
      if (b.dweight) {
        out.push(...gemm({
          label: "matmul backward dweight",
          c: b.dweight,
          a: b.dout,
          b: b.inp,
          M: s.OC,
          N: s.C,
          K: s.N,
          aLayout: "km",
          bLayout: "kn",
          accumulate: true,
          types: { a: type, b: type, c: "f32" },
        }));
      }
      if (b.dbias) out.push(...biasBackward({ dbias: b.dbias, dout: b.dout }, s));
      return out;
    },
    destroy() {
      noBias.destroy();
      splitSum.destroy();
    },
  };
}

/**
 * The matmul op's compiled kernels (kernels/matmul.wgsl): one per tile configuration, entry
 * point, operand types and layouts, compiled on demand and kept, so that the synchronous
 * {@link MatmulKernels.get} of src/model/matmul.ts finds what a configuration needs.
 */
import type { Gpu } from "../gpu/device.ts";
import { Kernel } from "../gpu/kernel.ts";
import { specializeWgsl } from "../gpu/specialize_wgsl.ts";
import { specializeStorage } from "../gpu/storage.ts";
import type { MatmulTiles } from "./matmul_tiles.ts";
import { type GemmTypes, typesKey } from "./matmul_types.ts";
import { MATMUL_WGSL as source } from "./matmul_source.ts";

/** The four (a, b) layouts every configuration is compiled for. */
const LAYOUTS = [["mk", "nk"], ["mk", "kn"], ["km", "kn"], ["km", "nk"]] as const;

/** Compiled matmul kernels of one op; see the module doc. */
export interface MatmulKernels {
  /**
   * Entry points serving `tiles` for products of `t`: one, or for f32 tiles whose TM and TN
   * are multiples of 4, `matmul_regs` and `matmul_regs4` (`matmul_tiled` and `matmul_tiled4`;
   * 16-byte loads, for the pieces whose shape allows them).
   */
  entriesFor(tiles: MatmulTiles, t: GemmTypes): string[];
  /**
   * Compiles what `tiles` needs for products of `types` (default: every type set of the op),
   * with the f32 output of their split-K partials.
   */
  compile(tiles: MatmulTiles, types?: readonly GemmTypes[]): Promise<void>;
  /** Whether every kernel of `tiles` for products of `t` is compiled (so `get` finds them). */
  isCompiled(tiles: MatmulTiles, t: GemmTypes): boolean;
  /** A compiled kernel; `layout` is "mk@nk" and the like. */
  get(tiles: MatmulTiles, entryPoint: string, t: GemmTypes, layout: string): Kernel;
  /** Whether products of `t` compute in f16 (two f16 operands on an op with f16 products). */
  inF16(t: GemmTypes): boolean;
}

/**
 * The kernel set of an op whose products take `typeSets`; `f16Products`: two f16 operands
 * multiply in f16 (the caller checked `shader-f16`).
 */
export function createMatmulKernels(
  gpu: Gpu,
  typeSets: readonly GemmTypes[],
  f16Products: boolean,
): MatmulKernels {
  const pending = new Map<string, Promise<Kernel>>();
  const compiled = new Map<string, Kernel>();
  const keyOf = (tiles: MatmulTiles, entryPoint: string, t: GemmTypes, layout: string) =>
    `${JSON.stringify(tiles)} ${entryPoint} ${typesKey(t)} ${layout}`;
  const inF16 = (t: GemmTypes) => f16Products && t.a === "f16" && t.b === "f16";
  const entriesFor = (tiles: MatmulTiles, t: GemmTypes) =>
    tiles.TM % 4 === 0 && tiles.TN % 4 === 0 && t.a === "f32" && t.b === "f32"
      ? [`matmul_${tiles.entry}`, `matmul_${tiles.entry}4`]
      : [`matmul_${tiles.entry}`];

  function compileTypes(tiles: MatmulTiles, t: GemmTypes): Promise<unknown> {
    const code = () => {
      const tiled = specializeWgsl(source, {
        WX: tiles.WX,
        WY: tiles.WY,
        TM: tiles.TM,
        TN: tiles.TN,
        BK: tiles.BK,
      });
      return specializeStorage(
        inF16(t) ? specializeWgsl(tiled, { F16_PRODUCTS: true }, { mul: "f16" }) : tiled,
        { ...t, bias: t.b },
      );
    };
    return Promise.all(
      entriesFor(tiles, t).flatMap((entryPoint) =>
        LAYOUTS.map(([al, bl]) => {
          const key = keyOf(tiles, entryPoint, t, `${al}@${bl}`);
          let kernel = pending.get(key);
          if (!kernel) {
            kernel = Kernel.create(gpu, {
              label: `${entryPoint} ${typesKey(t)} ${al}@${bl}${inF16(t) ? " f16 products" : ""}`,
              code: code(),
              entryPoint,
              constants: { A_KM: al === "km" ? 1 : 0, B_NK: bl === "nk" ? 1 : 0 },
            });
            pending.set(key, kernel);
            kernel.then((k) => compiled.set(key, k), () => pending.delete(key));
          }
          return kernel;
        })
      ),
    );
  }

  return {
    entriesFor,
    inF16,
    async compile(tiles, types = typeSets) {
      await Promise.all(
        types.flatMap((t) => [compileTypes(tiles, t), compileTypes(tiles, { ...t, c: "f32" })]),
      );
    },
    isCompiled(tiles, t) {
      return entriesFor(tiles, t).every((e) =>
        LAYOUTS.every(([al, bl]) => compiled.has(keyOf(tiles, e, t, `${al}@${bl}`)))
      );
    },
    get(tiles, entryPoint, t, layout) {
      return compiled.get(keyOf(tiles, entryPoint, t, layout))!;
    },
  };
}

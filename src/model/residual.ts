/**
 * Residual connection dispatch: out = a + b over n floats, e.g. (B,T,C) residual streams.
 *
 * Backward routes the gradient unchanged into both inputs, accumulating as llm.c's
 * residual_backward does: da += dout, db += dout. In GPT-2 the model adds dresidual into the
 * gradient of the previous residual stream (a) and of the branch output (attproj or fcproj, b).
 */
import type { Gpu } from "../gpu/device.ts";
import type { Binding } from "../gpu/buffer.ts";
import { type Dispatch, grid, Kernel } from "../gpu/kernel.ts";
import { specializeStorage, type StorageType } from "../gpu/storage.ts";
import source from "../../kernels/residual.wgsl" with { type: "text" };

/** Prepared residual dispatches. */
export interface ResidualOp {
  /** out (n) = a (n) + b (n). `out` must not alias `a` or `b`. */
  forward(b: { out: Binding; a: Binding; b: Binding }, s: { n: number }): Dispatch[];
  /** da (n) += dout (n), db (n) += dout (n); da, db and dout are three distinct buffers. */
  backward(b: { da: Binding; db: Binding; dout: Binding }, s: { n: number }): Dispatch[];
}

/**
 * Compile the residual kernels for tensors stored as `type`, except the forward's out and a,
 * the residual stream, stored as `streamType` (default `type`; f32 in an f16 model).
 */
export async function createResidual(
  gpu: Gpu,
  type: StorageType = "f32",
  streamType: StorageType = type,
): Promise<ResidualOp> {
  const code = specializeStorage(source, {
    ...Object.fromEntries(["b", "da", "db", "dout"].map((name) => [name, type])),
    out: streamType,
    a: streamType,
  });
  const [fwd, bwd] = await Promise.all(
    ["residual_forward", "residual_backward"].map((entryPoint) =>
      Kernel.create(gpu, { label: entryPoint, code, entryPoint })
    ),
  );
  return {
    forward(b, { n }) {
      return [fwd.bind(grid(Math.ceil(n / 128)), [b.out, b.a, b.b], new Uint32Array([n]))];
    },
    backward(b, { n }) {
      return [bwd.bind(grid(Math.ceil(n / 128)), [b.da, b.db, b.dout], new Uint32Array([n]))];
    },
  };
}

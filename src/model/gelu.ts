/**
 * GELU dispatch: forward and backward over n floats (the MLP's (B,T,4C) activations).
 *
 * Form: "erf" is the exact GELU x * Phi(x) of the seed recipe; "tanh" is HF GPT-2's `gelu_new`.
 * See kernels/gelu.wgsl for the erf-free evaluation of Phi.
 */
import type { Gpu } from "../gpu/device.ts";
import { asRange, type Binding } from "../gpu/buffer.ts";
import { type Dispatch, grid, Kernel } from "../gpu/kernel.ts";
import { specializeStorage, type StorageType } from "../gpu/storage.ts";
import source from "../../kernels/gelu.wgsl" with { type: "text" };

/** Which GELU: exact (erf) or the tanh approximation. */
export type GeluForm = "erf" | "tanh";

/** Prepared GELU dispatches. */
export interface GeluOp {
  readonly form: GeluForm;
  /** out (n) = gelu(inp (n)). */
  forward(b: { out: Binding; inp: Binding }, s: { n: number }): Dispatch[];
  /**
   * dinp (n) = gelu'(inp) * dout (n), OVERWRITES dinp. `dinp` may be the same binding as `dout`
   * (in place: the upstream gradient is replaced by the downstream one).
   */
  backward(b: { dinp: Binding; inp: Binding; dout: Binding }, s: { n: number }): Dispatch[];
}

/** Compile the GELU kernels of one form for tensors stored as `type` (f32 or bf16). */
export async function createGelu(
  gpu: Gpu,
  form: GeluForm = "erf",
  type: StorageType = "f32",
): Promise<GeluOp> {
  if (form !== "erf" && form !== "tanh") {
    throw new Error(`GELU form must be "erf" or "tanh", got "${form}"`);
  }
  const constants = { TANH: form === "tanh" ? 1 : 0 };
  const code = specializeStorage(
    source,
    Object.fromEntries(["out", "inp", "dinp", "dout", "grad"].map((name) => [name, type])),
  );
  const [fwd, bwd, bwdInPlace] = await Promise.all(
    ["gelu_forward", "gelu_backward", "gelu_backward_inplace"].map((entryPoint) =>
      Kernel.create(gpu, { label: entryPoint, code, entryPoint, constants })
    ),
  );
  return {
    form,
    forward(b, { n }) {
      return [fwd.bind(grid(Math.ceil(n / 128)), [b.out, b.inp], new Uint32Array([n]))];
    },
    backward(b, { n }) {
      const workgroups = grid(Math.ceil(n / 128));
      if (sameRange(b.dinp, b.dout)) {
        return [bwdInPlace.bind(workgroups, [b.dinp, b.inp], new Uint32Array([n]))];
      }
      return [bwd.bind(workgroups, [b.dinp, b.inp, b.dout], new Uint32Array([n]))];
    },
  };
}

function sameRange(a: Binding, b: Binding): boolean {
  const x = asRange(a), y = asRange(b);
  return x.buffer === y.buffer && x.offset === y.offset && x.size === y.size;
}

/**
 * The matmul kernels' WGSL as one module: kernels/matmul.wgsl (header, bindings, helpers and
 * bias_backward), then the CPU adapters' entry points (matmul_regs.wgsl) and the GPUs'
 * (matmul_tiled.wgsl).
 */
import common from "../../kernels/matmul.wgsl" with { type: "text" };
import regs from "../../kernels/matmul_regs.wgsl" with { type: "text" };
import tiled from "../../kernels/matmul_tiled.wgsl" with { type: "text" };

/** The WGSL of every matmul entry point, before specialisation. */
export const MATMUL_WGSL: string = [common, regs, tiled].join("\n");

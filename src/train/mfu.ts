/**
 * Model FLOPs utilization: FLOPs a training step needs against the adapter's f32 peak.
 * Tensor cores are unreachable from WebGPU, so the peak is the non-tensor f32 FMA rate.
 */
import type { GPT2Config } from "../model/config.ts";

/** f32 (non-tensor) FMA peak in TFLOP/s, matched against the adapter's name. */
const PEAK_TFLOPS: [RegExp, number][] = [
  [/H100.*PCIe/i, 51.2],
  [/H100|H200|GH200/i, 66.9],
  [/A100/i, 19.5],
  [/A10G/i, 31.2],
  [/L40S/i, 91.6],
  [/\bL4\b/i, 30.3],
  [/V100/i, 15.7],
  [/RTX 4090/i, 82.6],
  [/RTX 3090/i, 35.6],
  [/\bT4\b/i, 8.1],
];

/** The adapter's f32 peak in TFLOP/s, or undefined when its name is not in the table. */
export function peakTflops(adapterName: string): number | undefined {
  return PEAK_TFLOPS.find(([re]) => re.test(adapterName))?.[1];
}

/**
 * Forward + backward FLOPs per trained token at sequence length T (PaLM appendix B):
 * 6 per parameter of the matmuls (the tied lm_head included, position embeddings excluded)
 * plus 12 * L * C * T for attention's scores and weighted sums.
 */
export function trainingFlopsPerToken(config: GPT2Config, T: number): number {
  const { numLayers: L, channels: C, paddedVocabSize: Vp } = config;
  const matmulParams = L * 12 * C * C + Vp * C;
  return 6 * matmulParams + 12 * L * C * T;
}

/**
 * GPT-2 model configurations: the four OpenAI sizes and two small ones for CPU runs.
 *
 * A config is plain data (JSON-serialisable) so it travels in checkpoints and HF config.json.
 * Sizes use llm.c's names: L layers, NH heads, C channels, T max sequence length, V vocab,
 * Vp padded vocab (wte has Vp rows; rows V..Vp-1 are zero and never predicted).
 */

/** The hyperparameters that fix a GPT-2's shapes and numerics. */
export interface GPT2Config {
  /** L: number of transformer blocks. */
  numLayers: number;
  /** NH: attention heads; must divide `channels`. */
  numHeads: number;
  /** C: width of the residual stream. */
  channels: number;
  /** T max: context length (rows of wpe). */
  maxSeqLen: number;
  /** V: real vocabulary size (50257 for GPT-2 BPE). */
  vocabSize: number;
  /** Vp: wte rows, V rounded up to a multiple of 128 (50304 for GPT-2) for aligned matmuls. */
  paddedVocabSize: number;
  /** Biases on every Linear and LayerNorm (HF GPT-2: true; the seed recipe: false). */
  bias: boolean;
  /** GELU form: "tanh" (HF `gelu_new`) or "erf" (exact, the seed recipe). */
  gelu: "tanh" | "erf";
  /** lm_head shares wte. GPT-2 always ties them; only `true` is supported. */
  tiedEmbeddings: boolean;
  /** LayerNorm epsilon (1e-5 in GPT-2). */
  layerNormEps: number;
}

/** GPT-2 BPE vocabulary size. */
export const GPT2_VOCAB_SIZE = 50257;

/**
 * Head sizes (C / NH) the attention kernels take: multiples of 4 (rows are read as vec4) up to
 * 128 (a row is kept in registers).
 */
export const HEAD_SIZE_MULTIPLE = 4;
/** See {@link HEAD_SIZE_MULTIPLE}. */
export const MAX_HEAD_SIZE = 128;
/**
 * The most parameters a model may have: its flat buffers are single Float32Arrays, which hold
 * at most 2^32 elements (16 GiB). Checked from the config so that a corrupt size (n_positions
 * 2^40) is an error naming the file, not a failed allocation.
 */
export const MAX_PARAMETERS = 2 ** 32;

/** Round `vocabSize` up to a multiple of `multiple` (128 gives 50304 for GPT-2). */
export function padVocab(vocabSize: number, multiple = 128): number {
  return Math.ceil(vocabSize / multiple) * multiple;
}

/** The defaults every preset shares: the seed recipe (no bias, erf GELU, tied, eps 1e-5). */
const BASE = {
  maxSeqLen: 1024,
  vocabSize: GPT2_VOCAB_SIZE,
  bias: false,
  gelu: "erf",
  tiedEmbeddings: true,
  layerNormEps: 1e-5,
} as const;

/**
 * Named sizes. `tiny` is for tests and smoke runs. `cpu-small` (L4 NH4 C64 T128, 3.4M
 * parameters of which 3.2M are wte) is sized for a visible WordNet learning curve on 2 CPU
 * cores through lavapipe: with the 50257-token vocabulary the tied classifier dominates the
 * FLOPs (6*Vp*C per trained token against 72*L*C^2 for the blocks), so width is what costs.
 * Measured at B=8, T=64 on the 2 shared cores (load ~10): C=64 takes 2.9 s per step, C=128
 * 10.6 s. 4 layers of 4 heads (head size 16) keep attention meaningful.
 */
export const PRESETS = {
  "gpt2": { numLayers: 12, numHeads: 12, channels: 768 },
  "gpt2-medium": { numLayers: 24, numHeads: 16, channels: 1024 },
  "gpt2-large": { numLayers: 36, numHeads: 20, channels: 1280 },
  "gpt2-xl": { numLayers: 48, numHeads: 25, channels: 1600 },
  "mini": { numLayers: 6, numHeads: 6, channels: 384, maxSeqLen: 256 },
  "tiny": { numLayers: 2, numHeads: 2, channels: 32, maxSeqLen: 64 },
  "cpu-small": { numLayers: 4, numHeads: 4, channels: 64, maxSeqLen: 128 },
} as const satisfies Record<string, Partial<GPT2Config>>;

/** A preset's name. */
export type PresetName = keyof typeof PRESETS;

/** The names of all presets, for flag help. */
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

/**
 * The preset `name` with `overrides` applied, validated. The padded vocabulary follows the
 * vocabulary unless given.
 */
export function presetConfig(name: string, overrides: Partial<GPT2Config> = {}): GPT2Config {
  if (!(name in PRESETS)) {
    throw new Error(`unknown model preset "${name}" (expected one of ${PRESET_NAMES.join(", ")})`);
  }
  return makeConfig({ ...BASE, ...PRESETS[name as PresetName], ...overrides });
}

/**
 * A complete, validated config from `fields`: `paddedVocabSize` defaults to the vocabulary
 * padded to 128; the other optional fields default to the seed recipe.
 */
export function makeConfig(
  fields: Partial<GPT2Config> & Pick<GPT2Config, "numLayers" | "numHeads" | "channels">,
): GPT2Config {
  const vocabSize = fields.vocabSize ?? BASE.vocabSize;
  const config: GPT2Config = {
    numLayers: fields.numLayers,
    numHeads: fields.numHeads,
    channels: fields.channels,
    maxSeqLen: fields.maxSeqLen ?? BASE.maxSeqLen,
    vocabSize,
    paddedVocabSize: fields.paddedVocabSize ?? padVocab(vocabSize),
    bias: fields.bias ?? BASE.bias,
    gelu: fields.gelu ?? BASE.gelu,
    tiedEmbeddings: fields.tiedEmbeddings ?? BASE.tiedEmbeddings,
    layerNormEps: fields.layerNormEps ?? BASE.layerNormEps,
  };
  validateConfig(config);
  return config;
}

/** Throws a clear error naming the first invalid field. */
export function validateConfig(config: GPT2Config, where = "model config"): void {
  const positiveInt = (key: keyof GPT2Config) => {
    const value = config[key];
    if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
      throw new Error(`${where}: ${key} must be a positive integer, got ${JSON.stringify(value)}`);
    }
  };
  for (const key of ["numLayers", "numHeads", "channels", "maxSeqLen", "vocabSize"] as const) {
    positiveInt(key);
  }
  positiveInt("paddedVocabSize");
  if (config.channels % config.numHeads !== 0) {
    throw new Error(
      `${where}: channels ${config.channels} is not divisible by numHeads ${config.numHeads}`,
    );
  }
  const headSize = config.channels / config.numHeads;
  if (headSize % HEAD_SIZE_MULTIPLE !== 0 || headSize > MAX_HEAD_SIZE) {
    throw new Error(
      `${where}: numHeads ${config.numHeads} gives a head size of channels / numHeads = ` +
        `${config.channels} / ${config.numHeads} = ${headSize}; the attention kernels take ` +
        `multiples of ${HEAD_SIZE_MULTIPLE} up to ${MAX_HEAD_SIZE} (is numHeads wrong?)`,
    );
  }
  const { numLayers: L, channels: C, maxSeqLen: T, paddedVocabSize: Vp } = config;
  const parameters = (Vp + T) * C + L * (12 * C * C + 13 * C) + 2 * C; // with biases
  if (parameters > MAX_PARAMETERS) {
    throw new Error(
      `${where}: numLayers ${L}, channels ${C}, maxSeqLen ${T} and paddedVocabSize ${Vp} ` +
        `make ${parameters.toExponential(3)} parameters, over the ${MAX_PARAMETERS} one ` +
        "Float32Array can hold",
    );
  }
  if (config.paddedVocabSize < config.vocabSize) {
    throw new Error(
      `${where}: paddedVocabSize ${config.paddedVocabSize} is below vocabSize ${config.vocabSize}`,
    );
  }
  if (typeof config.bias !== "boolean") {
    throw new Error(`${where}: bias must be true or false, got ${JSON.stringify(config.bias)}`);
  }
  if (config.gelu !== "tanh" && config.gelu !== "erf") {
    throw new Error(`${where}: gelu must be "tanh" or "erf", got ${JSON.stringify(config.gelu)}`);
  }
  if (config.tiedEmbeddings !== true) {
    throw new Error(`${where}: only tied embeddings (tiedEmbeddings: true) are supported`);
  }
  if (!(config.layerNormEps > 0)) {
    throw new Error(`${where}: layerNormEps must be positive, got ${config.layerNormEps}`);
  }
}

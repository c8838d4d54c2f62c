/**
 * llm.c's GPT-2 model file (`gpt2_124M.bin`, written by llm.c's train_gpt2.py and read by its
 * train_gpt2.c), float32 version.
 *
 * Layout: 256 little-endian int32 header words, then the parameters as float32, grouped by kind
 * across layers (each group is all L layers' tensors back to back):
 *   [0] 20240326 (magic), [1] 3 (version: fp32), [2] maxT, [3] V, [4] L, [5] NH, [6] C, [7] Vp;
 *   wte (Vp, C), wpe (maxT, C), ln1w (L, C), ln1b (L, C), qkvw (L, 3C, C), qkvb (L, 3C),
 *   attprojw (L, C, C), attprojb (L, C), ln2w (L, C), ln2b (L, C), fcw (L, 4C, C), fcb (L, 4C),
 *   fcprojw (L, C, 4C), fcprojb (L, C), lnfw (C), lnfb (C).
 * Matrices are (out, in) like ours, so tensors copy across without a transpose.
 *
 * llm.c always has biases and computes the tanh GELU. A bias-free model is written with zero
 * biases, which computes the same function. Header words 8 and 9 are unused by llm.c; we mark
 * there that a model was bias-free (word 8 = 1) and used the exact erf GELU (word 9 = 1), so a
 * round trip through this format gives back the same config. llm.c itself ignores them, so it
 * runs an erf model with tanh GELU: {@link llmcGeluWarning} says so where that matters.
 */
import { type GPT2Config, makeConfig } from "./config.ts";
import { type LayerParams, type ParamLayout, paramLayout, type ParamTensor } from "./params.ts";
import type { LoadedModel } from "./hf.ts";
import { writeFileAtomic } from "../io/atomic.ts";

/** llm.c's model file magic and the fp32 version. */
export const LLMC_MODEL_MAGIC = 20240326;
export const LLMC_MODEL_VERSION_F32 = 3;
const HEADER_WORDS = 256;
const HEADER_BYTES = HEADER_WORDS * 4;
/** Our marks in header words llm.c does not read. */
const WORD_BIAS_FREE = 8, WORD_ERF_GELU = 9;

const PER_LAYER: (keyof LayerParams)[] = [
  "ln1w",
  "ln1b",
  "qkvw",
  "qkvb",
  "attprojw",
  "attprojb",
  "ln2w",
  "ln2b",
  "fcw",
  "fcb",
  "fcprojw",
  "fcprojb",
];

/** Element count of one layer's tensor of `kind`, with biases whether or not the model has them. */
function layerSize(kind: keyof LayerParams, C: number): number {
  const sizes: Record<keyof LayerParams, number> = {
    ln1w: C,
    ln1b: C,
    qkvw: 3 * C * C,
    qkvb: 3 * C,
    attprojw: C * C,
    attprojb: C,
    ln2w: C,
    ln2b: C,
    fcw: 4 * C * C,
    fcb: 4 * C,
    fcprojw: 4 * C * C,
    fcprojb: C,
  };
  return sizes[kind];
}

/**
 * The file's parameter groups in order: each a list of (tensor or null for an absent bias,
 * element count). Used by both reader and writer, so the two cannot disagree.
 */
function groups(layout: ParamLayout): { tensor: ParamTensor | null; size: number }[] {
  const { numLayers: L, channels: C } = layout.config;
  const out: { tensor: ParamTensor | null; size: number }[] = [
    { tensor: layout.wte, size: layout.wte.size },
    { tensor: layout.wpe, size: layout.wpe.size },
  ];
  for (const kind of PER_LAYER) {
    for (let l = 0; l < L; l++) {
      out.push({ tensor: layout.layers[l][kind], size: layerSize(kind, C) });
    }
  }
  out.push({ tensor: layout.lnfw, size: C }, { tensor: layout.lnfb, size: C });
  return out;
}

/** Bytes of the llm.c model file for `config`. */
export function llmcFileBytes(config: GPT2Config): number {
  return HEADER_BYTES + groups(paramLayout(config)).reduce((n, g) => n + g.size, 0) * 4;
}

/** Whether `path` starts with llm.c's model magic (cheap: reads 4 bytes). */
export async function isLlmcModelFile(path: string): Promise<boolean> {
  const file = await Deno.open(path);
  try {
    const word = new Uint8Array(4);
    const n = await file.read(word);
    return n === 4 && new DataView(word.buffer).getInt32(0, true) === LLMC_MODEL_MAGIC;
  } finally {
    file.close();
  }
}

/** Write `params` (laid out by `paramLayout(config)`) as an llm.c fp32 model file, atomically. */
export async function saveLlmc(
  path: string,
  config: GPT2Config,
  params: Float32Array,
): Promise<void> {
  const layout = paramLayout(config);
  if (params.length < layout.totalFloats) {
    throw new Error(`${path}: ${params.length} parameters given, the layout needs more`);
  }
  const header = new Int32Array(HEADER_WORDS);
  header.set([
    LLMC_MODEL_MAGIC,
    LLMC_MODEL_VERSION_F32,
    config.maxSeqLen,
    config.vocabSize,
    config.numLayers,
    config.numHeads,
    config.channels,
    config.paddedVocabSize,
  ]);
  header[WORD_BIAS_FREE] = config.bias ? 0 : 1;
  header[WORD_ERF_GELU] = config.gelu === "erf" ? 1 : 0;
  await writeFileAtomic(path, async (file) => {
    await writeAll(file, new Uint8Array(header.buffer));
    for (const { tensor, size } of groups(layout)) {
      const data = tensor
        ? params.slice(tensor.offset, tensor.offset + tensor.size)
        : new Float32Array(size);
      await writeAll(file, new Uint8Array(data.buffer));
    }
  });
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
}

/** Read an llm.c fp32 model file. Errors name the file and the reason. */
export async function loadLlmc(path: string): Promise<LoadedModel> {
  const bytes = await Deno.readFile(path).catch((e) => {
    throw new Error(`${path}: cannot read the llm.c model file: ${(e as Error).message}`);
  });
  if (bytes.length < HEADER_BYTES) {
    throw new Error(`${path}: ${bytes.length} bytes, shorter than llm.c's 1024-byte header`);
  }
  const h = new Int32Array(bytes.buffer, bytes.byteOffset, HEADER_WORDS).slice();
  if (h[0] !== LLMC_MODEL_MAGIC) {
    throw new Error(
      `${path}: not an llm.c model file (magic ${h[0]}, expected ${LLMC_MODEL_MAGIC})`,
    );
  }
  if (h[1] !== LLMC_MODEL_VERSION_F32) {
    throw new Error(
      `${path}: llm.c model version ${
        h[1]
      }; only version ${LLMC_MODEL_VERSION_F32} (fp32) is read ` +
        "(version 5 is bf16: export fp32 from llm.c)",
    );
  }
  let config: GPT2Config;
  try {
    config = makeConfig({
      maxSeqLen: h[2],
      vocabSize: h[3],
      numLayers: h[4],
      numHeads: h[5],
      channels: h[6],
      paddedVocabSize: h[7],
      bias: h[WORD_BIAS_FREE] !== 1,
      gelu: h[WORD_ERF_GELU] === 1 ? "erf" : "tanh",
    });
  } catch (e) {
    throw new Error(`${path}: header: ${(e as Error).message}`);
  }
  const expected = llmcFileBytes(config);
  if (bytes.length !== expected) {
    throw new Error(
      `${path}: ${bytes.length} bytes, but its header (L${config.numLayers} C${config.channels} ` +
        `T${config.maxSeqLen} Vp${config.paddedVocabSize}) needs ${expected}`,
    );
  }
  const layout = paramLayout(config);
  const params = new Float32Array(layout.totalFloats);
  const floats = new Float32Array(bytes.buffer, bytes.byteOffset + HEADER_BYTES);
  let at = 0;
  for (const { tensor, size } of groups(layout)) {
    const data = floats.subarray(at, at + size);
    if (tensor) {
      params.set(data, tensor.offset);
    } else if (data.some((x) => x !== 0)) {
      // A bias-free mark with non-zero biases: dropping them would change the function.
      throw new Error(`${path}: marked bias-free (header word 8) but holds non-zero biases`);
    }
    at += size;
  }
  return { config, layout, params };
}

/** The note to print when an erf-GELU model goes to llm.c, which computes the tanh GELU. */
export function llmcGeluWarning(config: GPT2Config): string | null {
  return config.gelu === "erf"
    ? "note: this model uses the exact (erf) GELU; llm.c's train_gpt2 computes the tanh " +
      "approximation, so there its outputs differ slightly (repgpt reads the file back as erf)"
    : null;
}

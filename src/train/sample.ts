/**
 * Text generation from a GPT-2: temperature and top-k sampling, streamed as it goes.
 * `deno task sample` (src/commands/sample.ts) and the trainer's end-of-run sample both use
 * {@link sampleText}.
 */
import type { GPT2 } from "../model/gpt2.ts";
import { Tokenizer } from "../tokenizer/tokenizer.ts";
import type { Rng } from "../model/rng.ts";

/** How to sample. */
export interface SampleOptions {
  /** Text to continue ("" starts from `<|endoftext|>` alone). */
  prompt: string;
  /** New tokens to generate. */
  tokens: number;
  /** Softmax temperature; 0 picks the most likely token. */
  temperature: number;
  /** Sample among the k most likely tokens only (0 = all). */
  topK: number;
  rng: Rng;
  /** Receives the text as it is generated. */
  write(text: string): void;
}

/**
 * Generate with `model` (any B, T: row 0 is used, the context is the last T tokens).
 * Returns the generated token ids.
 */
export async function sampleText(model: GPT2, o: SampleOptions): Promise<number[]> {
  const tok = await Tokenizer.gpt2();
  const ids = [tok.eot, ...tok.encode(o.prompt)];
  const { B, T } = model;
  const V = model.config.vocabSize;
  const outside = ids.find((id) => id >= V);
  if (outside !== undefined) {
    throw new Error(`the prompt has token ${outside}, outside this model's vocabulary of ${V}`);
  }
  const inputs = new Uint32Array(B * T);
  const stream = tok.textStream();
  const generated: number[] = [];
  o.write(o.prompt);
  for (let i = 0; i < o.tokens; i++) {
    const context = ids.slice(-T);
    inputs.fill(tok.eot).set(context);
    model.uploadBatch(inputs, inputs);
    const logits = await model.logitsAt(new Array(B).fill(context.length - 1));
    const next = sampleToken(logits.subarray(0, V), o.temperature, o.topK, o.rng);
    ids.push(next);
    generated.push(next);
    o.write(stream.push([next]));
  }
  o.write(stream.end());
  return generated;
}

/** Draw one token id from `logits` (V) with temperature and top-k. */
export function sampleToken(
  logits: Float32Array,
  temperature: number,
  topK: number,
  rng: Rng,
): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  if (temperature === 0) return best;
  // The k-th largest logit is the cut-off (ties at the cut-off are all kept).
  const cutoff = topK > 0 && topK < logits.length
    ? Float32Array.from(logits).sort()[logits.length - topK]
    : -Infinity;
  const weights = new Float64Array(logits.length);
  let total = 0;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] < cutoff) continue;
    weights[i] = Math.exp((logits[i] - logits[best]) / temperature);
    total += weights[i];
  }
  let r = rng.nextFloat() * total;
  for (let i = 0; i < logits.length; i++) {
    r -= weights[i];
    if (r < 0 && weights[i] > 0) return i;
  }
  return best;
}

/**
 * Prepare's tokenizer Worker. Message in: `{ seq, job }` ({@link Job}). Message out:
 * `{ seq, tokens, docTokens }`, where `tokens` is the job's documents as GPT-2 tokens, each
 * preceded by EOT (llm.c's convention), and `docTokens[i]` the token count of document i
 * (EOT included); both buffers are transferred, not copied. On failure: `{ seq, error }`.
 */
/// <reference lib="deno.worker" />
import { Tokenizer } from "../tokenizer/tokenizer.ts";
import { type Job, jobDocuments } from "./inputs.ts";

/** A Worker's answer for one job. */
export type WorkerResult =
  | { seq: number; tokens: Uint16Array; docTokens: Uint32Array }
  | { seq: number; error: string };

const tokenizer = Tokenizer.gpt2();

self.onmessage = async (event: MessageEvent<{ seq: number; job: Job }>) => {
  const { seq, job } = event.data;
  try {
    const tok = await tokenizer;
    const docs = await jobDocuments(job);
    const encoded = docs.map((doc) => tok.encode(doc));
    const docTokens = new Uint32Array(encoded.length);
    let total = 0;
    for (let i = 0; i < encoded.length; i++) {
      docTokens[i] = encoded[i].length + 1;
      total += docTokens[i];
    }
    const tokens = new Uint16Array(total);
    let at = 0;
    for (const ids of encoded) {
      tokens[at++] = tok.eot;
      tokens.set(ids, at); // GPT-2 ids are < 65536, so u32 -> u16 is exact
      at += ids.length;
    }
    const result: WorkerResult = { seq, tokens, docTokens };
    self.postMessage(result, [tokens.buffer, docTokens.buffer]);
  } catch (e) {
    const result: WorkerResult = { seq, error: (e as Error).message };
    self.postMessage(result);
  }
};

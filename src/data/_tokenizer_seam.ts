// TEMPORARY: stands in for src/tokenizer/tokenizer.ts until it lands.
import { get_encoding } from "tiktoken";
export const Tokenizer = {
  gpt2() {
    const enc = get_encoding("r50k_base");
    return Promise.resolve({ encode: (t: string) => enc.encode_ordinary(t), eot: 50256 });
  },
};

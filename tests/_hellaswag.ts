/** Generated HellaSwag files in the published JSON-lines form, for tests. */
import { Rng } from "../src/model/rng.ts";

const WORDS = ("the a man woman dog cat runs jumps over under quickly slowly into house garden " +
  "kitchen ball guitar plays sings then after before while red blue small large water field " +
  "camera person holds throws catches walks talks smiles cooks cuts bread onion knife").split(" ");

/** `count` examples in the published JSON-lines form (plus fields scoring ignores). */
export function generateHellaSwag(count: number, seed: number): string {
  const rng = new Rng(seed);
  const sentence = (n: number) =>
    Array.from({ length: n }, () => WORDS[rng.nextInt(WORDS.length)]).join(" ");
  const lines = [];
  for (let i = 0; i < count; i++) {
    lines.push(JSON.stringify({
      ind: i,
      activity_label: "Generated",
      ctx: `${sentence(3 + rng.nextInt(i % 10 === 0 ? 60 : 12))}.`,
      endings: Array.from({ length: 4 }, () => `${sentence(2 + rng.nextInt(8))}.`),
      label: rng.nextInt(4),
      split: "val",
    }));
  }
  return lines.join("\n") + "\n";
}

/**
 * `deno run -A tasks/docs.ts`: regenerate README.md's table of train flags (between the
 * `train-flags` markers) from src/train/options.ts. tests/readme_train_flags_test.ts fails when
 * the README's table is stale.
 */
import { trainFlagsMarkdown } from "../src/train/options.ts";

const START = "<!-- train-flags:start -->";
const END = "<!-- train-flags:end -->";

/** `readme` with the text between the train-flags markers replaced by the generated table. */
export function withTrainFlags(readme: string): string {
  const start = readme.indexOf(START), end = readme.indexOf(END);
  if (start < 0 || end < start) {
    throw new Error(`README.md: no "${START}" ... "${END}" markers around the train flags table`);
  }
  return `${readme.slice(0, start + START.length)}\n\n${trainFlagsMarkdown()}\n\n${
    readme.slice(end)
  }`;
}

if (import.meta.main) {
  const path = new URL("../README.md", import.meta.url).pathname;
  const before = await Deno.readTextFile(path);
  const after = withTrainFlags(before);
  if (after !== before) await Deno.writeTextFile(path, after);
  console.log(after === before ? `${path}: up to date` : `${path}: train flags table updated`);
}

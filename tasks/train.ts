/** `deno task train`: see src/train/train.ts, or `deno task train --help`. */
import { runMain } from "../src/cli/flags.ts";
import { trainMain } from "../src/train/train.ts";

if (import.meta.main) await runMain(() => trainMain(Deno.args));

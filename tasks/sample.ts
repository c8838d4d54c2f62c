/** `deno task sample --from PATH`: see src/train/sample.ts, or `deno task sample --help`. */
import { runMain } from "../src/cli/flags.ts";
import { sampleMain } from "../src/train/sample.ts";

if (import.meta.main) await runMain(() => sampleMain(Deno.args));

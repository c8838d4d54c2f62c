/** `deno task sample`: see src/commands/sample.ts (`--help` lists the flags). */
import { runMain } from "../src/commands/flags.ts";
import { sampleMain } from "../src/commands/sample.ts";

if (import.meta.main) await runMain(() => sampleMain(Deno.args));

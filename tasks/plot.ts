/** `deno task plot`: see src/commands/plot.ts (`--help` lists the flags). */
import { runMain } from "../src/commands/flags.ts";
import { plotMain } from "../src/commands/plot.ts";

if (import.meta.main) await runMain(() => plotMain(Deno.args));

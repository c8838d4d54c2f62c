/** `deno task eval`: see src/commands/eval.ts (`--help` lists the flags). */
import { runMain } from "../src/commands/flags.ts";
import { evalMain } from "../src/commands/eval.ts";

if (import.meta.main) await runMain(() => evalMain(Deno.args));

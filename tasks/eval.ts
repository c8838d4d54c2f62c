/** `deno task eval`: see src/model/eval.ts (`--help` lists the flags). */
import { runMain } from "../src/cli/flags.ts";
import { evalMain } from "../src/model/eval.ts";

if (import.meta.main) await runMain(() => evalMain(Deno.args));

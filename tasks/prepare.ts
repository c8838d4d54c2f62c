/** `deno task prepare`: see src/commands/prepare.ts (`--help` lists the flags). */
import { runMain } from "../src/commands/flags.ts";
import { prepareMain } from "../src/commands/prepare.ts";

if (import.meta.main) await runMain(() => prepareMain(Deno.args));

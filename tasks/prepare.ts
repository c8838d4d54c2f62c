/** `deno task prepare`: see src/data/prepare.ts (`--help` lists the flags). */
import { runMain } from "../src/cli/flags.ts";
import { prepareMain } from "../src/data/prepare.ts";

if (import.meta.main) await runMain(async () => void await prepareMain(Deno.args));

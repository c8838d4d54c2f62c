/** `deno task train`: see src/commands/train.ts (`--help` lists the flags). */
import { runMain } from "../src/commands/flags.ts";
import { trainMain } from "../src/commands/train.ts";

if (import.meta.main) await runMain(() => trainMain(Deno.args));

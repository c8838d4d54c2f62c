/** `deno task bench`: see src/commands/bench.ts (`--help` lists the flags). */
import { runMain } from "../src/commands/flags.ts";
import { benchMain } from "../src/commands/bench.ts";

if (import.meta.main) await runMain(() => benchMain(Deno.args));

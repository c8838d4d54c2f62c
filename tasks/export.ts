/** `deno task export`: see src/commands/export.ts (`--help` lists the flags). */
import { runMain } from "../src/commands/flags.ts";
import { exportMain } from "../src/commands/export.ts";

if (import.meta.main) await runMain(() => exportMain(Deno.args));

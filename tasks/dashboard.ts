/** `deno task dashboard`: see src/commands/dashboard.ts (`--help` lists the flags). */
import { runMain } from "../src/commands/flags.ts";
import { dashboardMain } from "../src/commands/dashboard.ts";

if (import.meta.main) await runMain(() => dashboardMain(Deno.args));

/**
 * Tests that need a tool from outside Deno (python3 with numpy, Open MPI's mpirun). Where the
 * tool is missing they are skipped, saying why; under CI=true, where `.ci/run` has installed
 * every tool, they run and fail with that reason instead, so CI never passes by skipping. A
 * missing tool never crashes a test module: probing catches every error.
 */

/** Whether this is a CI run: `CI=true`, as `.ci/run` and most CI services set it. */
export const IN_CI = Deno.env.get("CI") === "true";

/** What a test file learned about one tool from {@link probeTool}. */
export interface Tool {
  /** Whether the tests that need it should run: it is here, or this is CI (where they fail). */
  readonly run: boolean;
  /** Throws an error naming the tool, the test file and how to install it, if it is missing. */
  need(): void;
}

/**
 * Runs `check` (true when the tool works; a throw counts as missing) and says loudly on stderr
 * when the tool is missing whether `testFile`'s tests are skipped or, under CI, will fail.
 */
export async function probeTool(
  testFile: string,
  tool: string,
  install: string,
  check: () => Promise<boolean>,
): Promise<Tool> {
  let here = false;
  try {
    here = await check();
  } catch { /* not installed: Deno.Command throws NotFound */ }
  const reason = `${tool} is not available (install: ${install})`;
  if (!here) {
    const what = IN_CI ? "FAILING, CI=true needs it" : "SKIPPED";
    console.error(`\n*** ${testFile}: ${what}: ${reason} ***\n`);
  }
  return {
    run: here || IN_CI,
    need() {
      if (!here) throw new Error(`${testFile}: ${reason}; CI=true runs every test`);
    },
  };
}

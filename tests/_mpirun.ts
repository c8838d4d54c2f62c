/** Open MPI's mpirun for tests: whether it is here, and a command line that runs as root too. */
import { probeTool, type Tool } from "./_tool.ts";

let tool: Tool | undefined;

/**
 * Whether `testFile`'s MPI tests should run: mpirun works, or CI=true (then {@link mpirun}
 * fails them with a clear message). Otherwise they are skipped, with a message.
 */
export async function hasMpirun(testFile: string): Promise<boolean> {
  tool = await probeTool(
    testFile,
    "mpirun",
    "apt-get install openmpi-bin libopenmpi-dev",
    async () =>
      (await new Deno.Command("mpirun", { args: ["--version"], stdout: "null", stderr: "null" })
        .output()).success,
  );
  return tool.run;
}

/** CI containers run as root, which mpirun refuses without these. */
export const MPIRUN_ROOT_ENV = {
  OMPI_ALLOW_RUN_AS_ROOT: "1",
  OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1",
};

/** `mpirun ...args` with {@link MPIRUN_ROOT_ENV}; throws a clear error when mpirun is missing. */
export function mpirun(args: string[], options: Omit<Deno.CommandOptions, "args"> = {}) {
  tool?.need();
  return new Deno.Command("mpirun", {
    ...options,
    args,
    env: { ...MPIRUN_ROOT_ENV, ...options.env },
  });
}

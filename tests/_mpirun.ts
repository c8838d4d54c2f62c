/** Open MPI's mpirun for tests: whether it is here, and the environment it needs as root. */

/** True when `mpirun` runs; tests that need it are skipped (with a message) otherwise. */
export async function hasMpirun(testFile: string): Promise<boolean> {
  const ok = await new Deno.Command("mpirun", { args: ["--version"], stdout: "null" })
    .output().then((r) => r.success, () => false);
  if (!ok) console.warn(`${testFile}: skipped, mpirun is not installed (apt install openmpi-bin)`);
  return ok;
}

/** CI containers run as root, which mpirun refuses without these. */
export const MPIRUN_ROOT_ENV = {
  OMPI_ALLOW_RUN_AS_ROOT: "1",
  OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1",
};

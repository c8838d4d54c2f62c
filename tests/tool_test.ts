/**
 * A test whose outside tool (mpirun, numpy) is missing is skipped with its reason, and under
 * CI=true fails naming the tool; its module never crashes. Real `deno test` runs of the MPI
 * and numpy-oracle test files, with a PATH where neither tool exists.
 */
import { assert, assertEquals } from "./_assert.ts";
import { plain, REPO } from "./_dist_rank.ts";

const FILES = ["tests/mpi_test.ts", "tests/train_reference_test.ts"];

/** `deno test` of FILES with no tools on PATH; exit code and output. */
async function testWithoutTools(env: Record<string, string>) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", ...FILES],
    cwd: REPO,
    env: { PATH: "/nonexistent", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, out: plain(stdout) + plain(stderr) };
}

Deno.test("tools: without mpirun and numpy the tests are skipped, saying why", async () => {
  const { code, out } = await testWithoutTools({ CI: "false" });
  assertEquals(code, 0, out);
  assert(/0 passed \| 0 failed \| 2 ignored/.test(out), out);
  assert(out.includes("mpi_test: SKIPPED: mpirun is not available"), out);
  assert(out.includes("train_reference_test: SKIPPED: python3 with numpy"), out);
});

Deno.test("tools: under CI=true a missing mpirun or numpy fails its tests by name", async () => {
  const { code, out } = await testWithoutTools({ CI: "true" });
  assertEquals(code, 1, out);
  assert(/0 passed \| 2 failed/.test(out), out);
  for (const [file, tool] of [["mpi_test", "mpirun"], ["train_reference_test", "numpy"]]) {
    const said = new RegExp(`${file}: [^\\n]*${tool}[^\\n]* is not available [^\\n]*CI=true`);
    assert(said.test(out), `no failure naming ${tool} for ${file}:\n${out}`);
  }
});

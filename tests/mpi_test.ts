/** MPI transport through FFI under a real mpirun, checked bit for bit against the socket ring. */
import { assertEquals } from "./_assert.ts";
import { hasMpirun, mpirun } from "./_mpirun.ts";
import { outputWithin, plain, rankData, REPO } from "./_dist_rank.ts";

const mpirunHere = await hasMpirun("mpi_test");

Deno.test({
  name: "mpi: 2 ranks under mpirun, MPI and socket transports agree bit for bit",
  ignore: !mpirunHere,
  async fn() {
    const n = 100_003;
    const mpiOut = await Deno.makeTempDir({ prefix: "repgpt-mpi-test-" });
    const sockOut = await Deno.makeTempDir({ prefix: "repgpt-mpi-test-" });
    const runtimeDir = await Deno.makeTempDir({ prefix: "repgpt-mpi-test-" });
    const run = (dist: string, out: string) =>
      outputWithin(
        mpirun(
          ["-np", "2", "--oversubscribe", Deno.execPath(), "run", "-A"]
            .concat(["tests/_dist_rank.ts", "--dist", dist, "check", out, `${n}`]),
          {
            cwd: REPO,
            stdout: "piped",
            stderr: "piped",
            env: { XDG_RUNTIME_DIR: runtimeDir },
          },
        ),
      );
    try {
      const mpi = await run("mpi", mpiOut);
      assertEquals(mpi.code, 0, plain(mpi.stderr));
      // The socket ring under mpirun: ranks from OMPI_COMM_WORLD_*, folder from the job id.
      const sock = await run("socket", sockOut);
      assertEquals(sock.code, 0, plain(sock.stderr));
      assertEquals([...Deno.readDirSync(runtimeDir)], [], "the socket folder was left behind");

      const read = async (dir: string, name: string) =>
        new Uint32Array((await Deno.readFile(`${dir}/${name}`)).buffer);
      const [a, b] = [rankData(0, n), rankData(1, n)];
      const sum = new Float32Array(n).map((_, i) => a[i] + b[i]); // a + b: one rounding, any order
      for (const what of ["sum", "mean", "bcast"]) {
        for (const r of [0, 1]) {
          const name = `rank${r}.${what}.bin`;
          assertEquals(await read(mpiOut, name), await read(sockOut, name), `${name} differs`);
        }
      }
      assertEquals(await read(mpiOut, "rank1.sum.bin"), new Uint32Array(sum.buffer));
    } finally {
      await Deno.remove(mpiOut, { recursive: true });
      await Deno.remove(sockOut, { recursive: true });
      await Deno.remove(runtimeDir, { recursive: true });
    }
  },
});

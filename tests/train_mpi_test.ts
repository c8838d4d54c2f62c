/**
 * Training under `mpirun -np 2 ... --dist mpi` (Open MPI's MPI_Allreduce through FFI) gives
 * the same losses as the Unix-socket ring started with `--nproc 2`: for 2 ranks both sum a + b
 * in one rounding, so the losses agree bit for bit.
 */
import { join } from "node:path";
import { hasMpirun, mpirun } from "./_mpirun.ts";
import { assertEquals } from "./_assert.ts";
import { runTrain, tinyRunArgs, TRAIN, trainLosses, writeTokenData } from "./_train_run.ts";

const mpirunHere = await hasMpirun("train_mpi_test");

Deno.test({
  name: "train: mpirun -np 2 --dist mpi matches --nproc 2 over sockets bit for bit",
  ignore: !mpirunHere,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "train_mpi_" });
    try {
      const data = await writeTokenData(join(dir, "data"));
      const args = (out: string, extra: string[]) =>
        tinyRunArgs(data, out, ["--batch-size", "1", "--max-steps", "6", ...extra]);
      const sockets = join(dir, "sockets"), mpi = join(dir, "mpi");
      await runTrain(args(sockets, ["--nproc", "2"]));
      const run = await mpirun(
        ["-np", "2", "--oversubscribe", Deno.execPath(), "run", "-A", TRAIN]
          .concat(args(mpi, ["--dist", "mpi"])),
        { stdout: "piped", stderr: "piped" },
      ).output();
      const dec = new TextDecoder();
      assertEquals(run.code, 0, dec.decode(run.stdout) + dec.decode(run.stderr));
      const want = await trainLosses(sockets);
      assertEquals(want.size, 6);
      assertEquals([...(await trainLosses(mpi)).entries()], [...want.entries()]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

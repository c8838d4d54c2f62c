/** Rank discovery from launcher environments, the launch decision, and the socket folder. */
import { assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import { rankFromEnv } from "../src/distributed/rank.ts";
import { launchPlan } from "../src/distributed/launcher.ts";
import { socketDirFromEnv, socketPath } from "../src/distributed/socket_dir.ts";

Deno.test("rank: torchrun / launch() variables", () => {
  assertEquals(
    rankFromEnv({ RANK: "3", WORLD_SIZE: "4", LOCAL_RANK: "1", LOCAL_WORLD_SIZE: "2" }),
    { rank: 3, worldSize: 4, localRank: 1, localWorldSize: 2, source: "torchrun" },
  );
  assertEquals(rankFromEnv({ RANK: "2", WORLD_SIZE: "4" }).localRank, 2);
});

Deno.test("rank: Open MPI and srun variables; a batch script is no rank", () => {
  const ompi = {
    OMPI_COMM_WORLD_RANK: "5",
    OMPI_COMM_WORLD_SIZE: "8",
    OMPI_COMM_WORLD_LOCAL_RANK: "1",
    OMPI_COMM_WORLD_LOCAL_SIZE: "4",
  };
  assertEquals(rankFromEnv(ompi), {
    rank: 5,
    worldSize: 8,
    localRank: 1,
    localWorldSize: 4,
    source: "openmpi",
  });
  const slurm = { SLURM_PROCID: "2", SLURM_NTASKS: "4", SLURM_LOCALID: "2", SLURM_NNODES: "1" };
  assertEquals(rankFromEnv({ ...slurm, SLURM_STEP_ID: "0" }), {
    rank: 2,
    worldSize: 4,
    localRank: 2,
    localWorldSize: 4,
    source: "slurm",
  });
  assertEquals(rankFromEnv(slurm).source, "single");
  assertEquals(rankFromEnv({}), {
    rank: 0,
    worldSize: 1,
    localRank: 0,
    localWorldSize: 1,
    source: "single",
  });
});

Deno.test("rank: inconsistent or malformed variables are named in the error", () => {
  assertThrows(() => rankFromEnv({ RANK: "4", WORLD_SIZE: "4" }), Error, "RANK=4, WORLD_SIZE=4");
  assertThrows(() => rankFromEnv({ RANK: "x", WORLD_SIZE: "4" }), Error, 'RANK="x"');
  assertThrows(() => rankFromEnv({ RANK: "1" }), Error, "WORLD_SIZE is missing");
  assertThrows(() => rankFromEnv({ RANK: "0", WORLD_SIZE: "0" }), Error, "at least 1");
  assertThrows(
    () => rankFromEnv({ RANK: "1", WORLD_SIZE: "4", LOCAL_RANK: "2", LOCAL_WORLD_SIZE: "2" }),
    Error,
    "LOCAL_RANK=2, LOCAL_WORLD_SIZE=2",
  );
  assertThrows(
    () => rankFromEnv({ OMPI_COMM_WORLD_RANK: "0", OMPI_COMM_WORLD_SIZE: "-2" }),
    Error,
    'OMPI_COMM_WORLD_SIZE="-2"',
  );
});

Deno.test("rank: launchPlan for --nproc, SageMaker, and processes that already are ranks", () => {
  assertEquals(launchPlan(undefined, {}), null);
  assertEquals(launchPlan(1, {}), null);
  assertEquals(launchPlan(4, {}), { nproc: 4, rankOffset: 0, worldSize: 4 });
  assertEquals(launchPlan(4, { RANK: "0", WORLD_SIZE: "4" }), null);
  assertEquals(launchPlan(undefined, { OMPI_COMM_WORLD_RANK: "0" }), null);
  const sm = { SM_HOSTS: '["algo-1","algo-2"]', SM_CURRENT_HOST: "algo-2", SM_NUM_GPUS: "8" };
  assertEquals(launchPlan(undefined, sm), { nproc: 8, rankOffset: 8, worldSize: 16 });
  assertEquals(launchPlan(2, sm), { nproc: 2, rankOffset: 2, worldSize: 4 });
  assertEquals(launchPlan(undefined, { ...sm, SM_HOSTS: '["algo-2"]', SM_NUM_GPUS: "0" }), null);
  assertThrows(() => launchPlan(undefined, { ...sm, SM_CURRENT_HOST: "algo-9" }), Error, "algo-9");
  assertThrows(() => launchPlan(undefined, { ...sm, SM_HOSTS: "algo-1" }), Error, "JSON list");
  assertThrows(() => launchPlan(0, {}), Error, "--nproc");
});

Deno.test("rank: socket folder from the launcher's job id is private (0700) and checked", async () => {
  const base = await Deno.makeTempDir({ prefix: "repgpt-rank-test-" });
  try {
    const env = { XDG_RUNTIME_DIR: base, OMPI_MCA_ess_base_jobid: "1234" };
    const dir = await socketDirFromEnv(env);
    assertEquals(dir, `${base}/repgpt-${Deno.uid()}-1234`);
    assertEquals((await Deno.stat(dir)).mode! & 0o777, 0o700);
    assertEquals(await socketDirFromEnv(env), dir); // the second rank finds it
    await Deno.chmod(dir, 0o755);
    await assertRejects(() => socketDirFromEnv(env), Error, "mode 0700");
    // A planted symlink is refused, even to a private folder of ours.
    await Deno.chmod(dir, 0o700);
    await Deno.rename(dir, `${dir}.real`);
    await Deno.symlink(`${dir}.real`, dir);
    await assertRejects(() => socketDirFromEnv(env), Error, `${dir} is a symlink`);
    await assertRejects(() => socketDirFromEnv({}), Error, "REPGPT_SOCKET_DIR");
    assertThrows(() => socketPath(`/tmp/${"x".repeat(100)}`, 0), Error, "longer than 107");
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

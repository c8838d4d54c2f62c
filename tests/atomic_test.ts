import { removeStaleTemps, tempPathFor, writeAtomic, writeFileAtomic } from "../src/io/atomic.ts";
import { assertEquals, assertRejects } from "./_assert.ts";
import { join } from "node:path";
import { canMountTmpfs, withTmpfs } from "./_tmpfs.ts";

const tmpfsHere = await canMountTmpfs("atomic_test");

Deno.test("atomic: replaces the file; a failing writer leaves the old one and no temporary", async () => {
  const dir = await Deno.makeTempDir({ prefix: "atomic_test_" });
  const path = join(dir, "state.json");
  await writeAtomic(path, "old");
  await writeAtomic(path, "new");
  assertEquals(await Deno.readTextFile(path), "new");
  await assertRejects(
    () =>
      writeFileAtomic(path, async (file) => {
        await file.write(new TextEncoder().encode("partial"));
        throw new Error("disk full");
      }),
    Error,
    "disk full",
  );
  assertEquals(await Deno.readTextFile(path), "new");
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["state.json"]);
});

Deno.test("atomic: stale temporaries of dead processes are removed, live ones kept", async () => {
  const dir = await Deno.makeTempDir({ prefix: "atomic_stale_" });
  const mine = tempPathFor(join(dir, "a.bin"));
  const dead = join(dir, "b.bin.tmp-4194305"); // above Linux's default pid_max
  await Deno.writeTextFile(mine, "x");
  await Deno.writeTextFile(dead, "x");
  await Deno.writeTextFile(join(dir, "c.bin"), "x");
  assertEquals(await removeStaleTemps(dir), ["b.bin.tmp-4194305"]);
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
    `a.bin.tmp-${Deno.pid}`,
    "c.bin",
  ]);
});

Deno.test({
  name: "atomic: a full disk (real ENOSPC on a tmpfs) names the file; the old one stays",
  ignore: !tmpfsHere,
  async fn() {
    await withTmpfs(64, async (dir) => {
      const path = join(dir, "model.safetensors");
      await writeAtomic(path, "old");
      await assertRejects(
        () => writeAtomic(path, new Uint8Array(256 << 10)),
        Error,
        `${path}: cannot write: No space left on device`,
      );
      assertEquals(await Deno.readTextFile(path), "old");
      assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["model.safetensors"]);
    });
  },
});

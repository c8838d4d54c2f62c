import {
  checkpointPath,
  latestCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  saveCheckpoint,
  type TensorSlot,
} from "../src/io/checkpoint.ts";
import { SafetensorsReader, writeSafetensors } from "../src/io/safetensors.ts";
import { Rng } from "../src/model/rng.ts";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { basename, join } from "node:path";

// Two tensors with alignment padding between them, as src/model/params.ts lays them out.
const LAYOUT: TensorSlot[] = [
  { name: "wte.weight", shape: [5, 3], offset: 0, size: 15 },
  { name: "ln_f.weight", shape: [3], offset: 64, size: 3 },
];
const FLOATS = 128;

function flat(seed: number): Float32Array {
  return new Rng(seed).fillNormal(new Float32Array(FLOATS), 1);
}

function slots(x: Float32Array): number[] {
  return LAYOUT.flatMap((t) => [...x.subarray(t.offset, t.offset + t.size)]);
}

Deno.test("checkpoint: round trip of weights, AdamW moments and metadata", async () => {
  const dir = join(await Deno.makeTempDir({ prefix: "ckpt_rt_" }), "checkpoints");
  const [params, m, v] = [flat(1), flat(2), flat(3)];
  const rng = new Rng(9);
  rng.normal();
  let fetched = 0;
  const path = await saveCheckpoint(dir, {
    step: 1000,
    layout: LAYOUT,
    params,
    m,
    v: () => (fetched++, v),
    config: { lr: 1e-2, model: "gpt2" },
    modelConfig: { numLayers: 12 },
    loaderState: { shard: 1, position: 12345 },
    rngState: rng.state(),
    trainerState: { tokensSeen: 524288000 },
  });
  assertEquals(basename(path), "step_00001000.safetensors");
  assertEquals(fetched, 1, "a lazy flat buffer is fetched once for all its tensors");
  assertEquals(latestCheckpoint(dir), path);

  // Any safetensors reader can inspect it.
  using raw = await SafetensorsReader.open(path);
  assertEquals(raw.names(), [
    "params.wte.weight",
    "params.ln_f.weight",
    "adam_m.wte.weight",
    "adam_m.ln_f.weight",
    "adam_v.wte.weight",
    "adam_v.ln_f.weight",
  ]);

  using c = await loadCheckpoint(path);
  assertEquals(
    [c.step, c.hasOptimizer, c.names, c.config, c.modelConfig, c.loaderState, c.trainerState],
    [1000, true, ["wte.weight", "ln_f.weight"], { lr: 1e-2, model: "gpt2" }, { numLayers: 12 }, {
      shard: 1,
      position: 12345,
    }, { tokensSeen: 524288000 }],
  );
  assertEquals(Rng.fromState(c.rngState as ReturnType<Rng["state"]>).normal(), rng.normal());
  const into = {
    params: new Float32Array(FLOATS),
    m: new Float32Array(FLOATS),
    v: new Float32Array(FLOATS),
  };
  await c.readInto(LAYOUT, into);
  assertEquals(slots(into.params), slots(params));
  assertEquals(slots(into.m), slots(m));
  assertEquals(slots(into.v), slots(v));
  assertEquals(into.params[20], 0, "padding between tensors is not written");
  assertEquals([...await c.readTensor("adam_v", "ln_f.weight")], [...v.subarray(64, 67)]);
});

Deno.test("checkpoint: keeps the newest K, moves an abandoned future aside, drops stale temps", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ckpt_keep_" });
  const save = (step: number, keep = 2) =>
    saveCheckpoint(dir, { step, layout: LAYOUT, params: flat(step), config: {}, keep });
  for (const step of [1, 2, 3, 4]) await save(step);
  assertEquals(listCheckpoints(dir).map((c) => c.step), [3, 4]);
  // A temporary left by a dead writer (pid 2^22+1 is above Linux's pid_max default) is removed.
  const stale = join(dir, "step_00000005.safetensors.tmp-4194305");
  await Deno.writeFile(stale, new Uint8Array(10));
  await save(5, 3);
  assertEquals(listCheckpoints(dir).map((c) => c.step), [3, 4, 5]);
  assert(![...Deno.readDirSync(dir)].some((e) => e.name.includes(".tmp-")), "stale temp kept");
  // Resumed from step 3 and saved step 4 again: the old 4 and 5 belong to the abandoned run,
  // and are moved aside whole, not deleted; a second abandoned 5 does not overwrite the first.
  const [old4, old5] = [4, 5].map((step) => Deno.readFileSync(checkpointPath(dir, step)));
  await save(4);
  assertEquals(listCheckpoints(dir).map((c) => c.step), [3, 4]);
  const abandoned = join(dir, "abandoned");
  assertEquals(Deno.readFileSync(join(abandoned, "step_00000004.safetensors")), old4);
  assertEquals(Deno.readFileSync(join(abandoned, "step_00000005.safetensors")), old5);
  await save(5);
  await save(3);
  assertEquals(
    [...Deno.readDirSync(abandoned)].map((e) => e.name).sort(),
    [
      "step_00000004.1.safetensors",
      "step_00000004.safetensors",
      "step_00000005.1.safetensors",
      "step_00000005.safetensors",
    ],
  );
  await save(4);
  using c = await loadCheckpoint(latestCheckpoint(dir)!);
  const into = { params: new Float32Array(FLOATS) };
  await c.readInto(LAYOUT, into);
  assertEquals(slots(into.params), slots(flat(4)));
  assertEquals(latestCheckpoint(join(dir, "missing")), null);
});

Deno.test("checkpoint: clear errors for wrong models and wrong files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ckpt_bad_" });
  const path = await saveCheckpoint(dir, { step: 7, layout: LAYOUT, params: flat(7), config: {} });
  using c = await loadCheckpoint(path);
  assertEquals(c.hasOptimizer, false);
  const params = new Float32Array(FLOATS);
  await assertRejects(
    () => c.readInto(LAYOUT, { params, m: new Float32Array(FLOATS) }),
    Error,
    `${path}: holds weights only`,
  );
  const wider = [LAYOUT[0], { ...LAYOUT[1], shape: [4], size: 4 }];
  await assertRejects(
    () => c.readInto(wider, { params }),
    Error,
    'tensor "params.ln_f.weight" has shape [3], this model expects [4]',
  );
  await assertRejects(() => c.readInto([LAYOUT[0]], { params }), Error, "lacks: ln_f.weight");
  const bigger = [...LAYOUT, { name: "wpe.weight", shape: [2], offset: 100, size: 2 }];
  await assertRejects(() => c.readInto(bigger, { params }), Error, 'missing tensor "params.wpe');

  const plain = join(dir, "model.safetensors");
  await writeSafetensors(plain, [{
    name: "x",
    dtype: "F32",
    shape: [1],
    data: new Float32Array(1),
  }]);
  await assertRejects(() => loadCheckpoint(plain), Error, `${plain}: not a repgpt checkpoint`);
  const future = join(dir, "future.safetensors");
  await writeSafetensors(future, [], { format: "repgpt-checkpoint", format_version: "99" });
  await assertRejects(() => loadCheckpoint(future), Error, "format version 99");
  await assertRejects(
    () => saveCheckpoint(dir, { step: 8, layout: LAYOUT, params: flat(8), m: flat(8), config: {} }),
    Error,
    "both AdamW moments",
  );
});

// A real process saving checkpoints in a loop, killed with SIGKILL at random moments: every
// checkpoint under a real name must load and hold one consistent step, and each reported save
// must have survived.
const CHILD = `
const [dir, modUrl] = Deno.args;
const { saveCheckpoint, latestCheckpoint, loadCheckpoint } = await import(modUrl);
const n = 1 << 20;
const layout = [
  { name: "a", shape: [512, 1024], offset: 0, size: n / 2 },
  { name: "b", shape: [n / 2], offset: n / 2, size: n / 2 },
];
let step = 0;
const latest = latestCheckpoint(dir);
if (latest) {
  const c = await loadCheckpoint(latest);
  step = c.step;
  c.close();
}
for (;;) {
  step++;
  const params = new Float32Array(n).fill(step);
  await saveCheckpoint(dir, {
    step, layout, params, m: () => params.map((x) => -x), v: () => params,
    config: { n }, loaderState: { position: step }, keep: 2,
  });
  console.log("saved " + step);
}
`;

Deno.test("checkpoint: kill -9 during saves never leaves a partial checkpoint", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "ckpt_kill_" });
  const script = join(tmp, "child.ts");
  await Deno.writeTextFile(script, CHILD);
  const dir = join(tmp, "checkpoints");
  const modUrl = new URL("../src/io/checkpoint.ts", import.meta.url).href;
  const rng = new Rng(2024);
  let lastReported = 0;
  for (let round = 0; round < 6; round++) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-config", script, dir, modUrl],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    // Wait for this child's first save, then kill it at a random moment of a later one.
    while (!text.includes("saved")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`child exited early: ${await new Response(child.stderr).text()}`);
      text += value;
    }
    await new Promise((r) => setTimeout(r, rng.nextInt(150)));
    child.kill("SIGKILL");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    await child.stderr.cancel();
    assertEquals((await child.status).signal, "SIGKILL");
    lastReported = Math.max(lastReported, ...[...text.matchAll(/saved (\d+)/g)].map((m) => +m[1]));

    const all = listCheckpoints(dir);
    assert(all.length >= 1 && all.length <= 3, `round ${round}: ${all.length} checkpoints`);
    assert(all.at(-1)!.step >= lastReported, `round ${round}: reported save ${lastReported} lost`);
    for (const { step, path } of all) {
      using c = await loadCheckpoint(path);
      assertEquals(c.loaderState, { position: step });
      const [params, m, v] = [0, 1, 2].map(() => new Float32Array(1 << 20));
      await c.readInto(
        [{ name: "a", shape: [512, 1024], offset: 0, size: 1 << 19 }, {
          name: "b",
          shape: [1 << 19],
          offset: 1 << 19,
          size: 1 << 19,
        }],
        { params, m, v },
      );
      assert(params.every((x) => x === step), `${path}: params not all ${step}`);
      assert(m.every((x) => x === -step), `${path}: m not all ${-step}`);
      assert(v.every((x) => x === step), `${path}: v not all ${step}`);
    }
  }
});

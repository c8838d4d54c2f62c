/**
 * `deno task bench checkpoint [--model gpt2] [--dir DIR]`: time saving and loading one full
 * checkpoint (weights + AdamW m and v, f32) for a model preset, and report the file size and
 * throughput. Host-side only: the GPU readback before a save is not included.
 */
import { parseArgs } from "node:util";
import { presetConfig } from "../../model/config.ts";
import { paramLayout } from "../../model/params.ts";
import { loadCheckpoint, saveCheckpoint } from "../../io/checkpoint.ts";
import { Rng } from "../../model/rng.ts";

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { model: { type: "string", default: "gpt2" }, dir: { type: "string" } },
  });
  const layout = paramLayout(presetConfig(values.model!));
  const dir = values.dir ?? await Deno.makeTempDir({ prefix: "bench_checkpoint_" });
  const flat = () => new Rng(1).fillNormal(new Float32Array(layout.totalFloats), 0.02);
  const params = flat();
  const t0 = performance.now();
  const path = await saveCheckpoint(dir, {
    step: 1,
    layout: layout.tensors,
    params,
    m: params,
    v: params,
    config: { model: values.model },
  });
  const saveS = (performance.now() - t0) / 1000;
  const bytes = (await Deno.stat(path)).size;
  const t1 = performance.now();
  {
    using c = await loadCheckpoint(path);
    await c.readInto(layout.tensors, { params, m: params, v: params });
  }
  const loadS = (performance.now() - t1) / 1000;
  const mb = bytes / 1e6;
  console.log(
    `checkpoint ${values.model}: ${layout.numParameters.toLocaleString("en-US")} params, ` +
      `${mb.toFixed(0)} MB file; save (with fsync) ${saveS.toFixed(2)} s ` +
      `(${(mb / saveS).toFixed(0)} MB/s); load ${loadS.toFixed(2)} s (${
        (mb / loadS).toFixed(0)
      } MB/s)`,
  );
  if (!values.dir) await Deno.remove(dir, { recursive: true });
}

if (import.meta.main) await main(Deno.args);

/**
 * Training checkpoints: one safetensors file per saved step, `DIR/step_00001000.safetensors`,
 * so loading runs no code and any safetensors tool can inspect one.
 *
 * Tensors, one per parameter tensor (named as the model names them, e.g. `h.0.attn.c_attn.weight`
 * in our (out, in) orientation), in three groups:
 *   `params.<name>`, `adam_m.<name>`, `adam_v.<name>` (the last two absent for weights-only files)
 * `__metadata__` (all strings): `format` = "repgpt-checkpoint", `format_version`, `step`, and JSON
 * strings `config` (the full run config), `model_config`, `loader_state`, `rng_state`,
 * `trainer_state` (anything else to restore), plus `saved_at`.
 *
 * This is not a Hugging Face model file (our matrices are (out, in), the vocab is padded, there
 * may be no biases); export one with src/model/hf.ts when needed.
 *
 * Crash safety: each file is written to a temporary name, fsynced and renamed (see
 * src/io/atomic.ts), so a file under a `step_*` name is always complete; there is no "latest"
 * pointer to go stale: the latest checkpoint is the highest step present. Before a save,
 * checkpoints at its step or later (left by a run that was resumed from an earlier one: an
 * abandoned future, or a file that failed to load) are moved into `DIR/abandoned/`, never
 * deleted; after it, all but the newest `keep` are deleted (rotation). Only rank 0 saves.
 *
 * Memory: tensors are streamed one by one. The flat buffers may be given as functions that are
 * called only when their group's turn comes (e.g. a GPU readback), so the host holds one flat
 * buffer at a time.
 */
import { basename, join } from "node:path";
import { removeStaleTemps, syncDir } from "./atomic.ts";
import { SafetensorsReader, type TensorSource, writeSafetensors } from "./safetensors.ts";

/** Version of the layout described above; bumped on incompatible changes. */
export const CHECKPOINT_FORMAT_VERSION = 1;
const FORMAT = "repgpt-checkpoint";
const FILE_RE = /^step_(\d+)\.safetensors$/;
/** Where checkpoints of an abandoned future go, inside the checkpoint folder. */
const ABANDONED = "abandoned";

/** Where a tensor lives in the flat buffers (src/model/params.ts's ParamTensor fits). */
export interface TensorSlot {
  name: string;
  shape: readonly number[];
  /** Offset in floats into the flat buffer. */
  offset: number;
  /** Element count (product of `shape`). */
  size: number;
}

/** A flat f32 buffer, or a function giving it when it is needed. */
export type FlatSource = Float32Array | (() => Float32Array | Promise<Float32Array>);

/** The three flat-buffer groups of a checkpoint. */
export type Group = "params" | "adam_m" | "adam_v";

export interface SaveCheckpointOptions {
  /** Optimizer steps done: the weights are those after step `step`'s update. */
  step: number;
  /** Tensor names, shapes and offsets into the flat buffers (`paramLayout(cfg).tensors`). */
  layout: readonly TensorSlot[];
  params: FlatSource;
  /** AdamW first and second moments, laid out like `params`. Omit both for weights only. */
  m?: FlatSource;
  v?: FlatSource;
  /** The full run config (JSON-able). */
  config: unknown;
  /** The model's architecture config (JSON-able), so `--init-from` can rebuild the layout. */
  modelConfig?: unknown;
  /** Data loader position (JSON-able, opaque here). */
  loaderState?: unknown;
  /** {@link Rng.state} of the run's generator. */
  rngState?: unknown;
  /** Anything else the trainer restores (JSON-able), e.g. tokens seen, best val loss. */
  trainerState?: unknown;
  /** Checkpoints to keep, this one included (default 2). */
  keep?: number;
}

/** `dir/step_<8 digits>.safetensors`. */
export function checkpointPath(dir: string, step: number): string {
  return join(dir, `step_${String(step).padStart(8, "0")}.safetensors`);
}

/** Checkpoints in `dir` by increasing step; none if `dir` does not exist. */
export function listCheckpoints(dir: string): { step: number; path: string }[] {
  const found: { step: number; path: string }[] = [];
  try {
    for (const entry of Deno.readDirSync(dir)) {
      const match = FILE_RE.exec(entry.name);
      if (entry.isFile && match) {
        found.push({ step: Number(match[1]), path: join(dir, entry.name) });
      }
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return found.sort((a, b) => a.step - b.step);
}

/** Path of the highest-step checkpoint in `dir`, or null. */
export function latestCheckpoint(dir: string): string | null {
  return listCheckpoints(dir).at(-1)?.path ?? null;
}

/**
 * Save a checkpoint atomically in `dir` (created if needed), then prune (see the module doc).
 * Returns its path.
 */
export async function saveCheckpoint(dir: string, o: SaveCheckpointOptions): Promise<string> {
  const keep = o.keep ?? 2;
  if (!Number.isSafeInteger(o.step) || o.step < 0) {
    throw new Error(`checkpoint: step must be a non-negative integer, got ${o.step}`);
  }
  if (!Number.isInteger(keep) || keep < 1) throw new Error(`checkpoint: keep must be >= 1`);
  if ((o.m === undefined) !== (o.v === undefined)) {
    throw new Error("checkpoint: give both AdamW moments m and v, or neither");
  }
  await Deno.mkdir(dir, { recursive: true });
  await removeStaleTemps(dir);
  await setAsideCheckpoints(dir, o.step);
  const path = checkpointPath(dir, o.step);

  const groups: [Group, FlatSource][] = [["params", o.params]];
  if (o.m && o.v) groups.push(["adam_m", o.m], ["adam_v", o.v]);
  // Fetch each group's flat buffer when its first tensor is written; drop it after its last.
  let held: { group: Group; flat: Float32Array } | null = null;
  const flatOf = async (group: Group, source: FlatSource) => {
    if (held?.group !== group) {
      held = null;
      const flat = typeof source === "function" ? await source() : source;
      const need = Math.max(0, ...o.layout.map((t) => t.offset + t.size));
      if (flat.length < need) {
        throw new Error(`${path}: ${group} buffer has ${flat.length} floats, the layout ${need}`);
      }
      held = { group, flat };
    }
    return held.flat;
  };
  const sources: TensorSource[] = groups.flatMap(([group, source]) =>
    o.layout.map((t) => ({
      name: `${group}.${t.name}`,
      dtype: "F32" as const,
      shape: [...t.shape],
      data: async () => (await flatOf(group, source)).subarray(t.offset, t.offset + t.size),
    }))
  );
  const json = (x: unknown) => JSON.stringify(x ?? null);
  await writeSafetensors(path, sources, {
    format: FORMAT,
    format_version: String(CHECKPOINT_FORMAT_VERSION),
    step: String(o.step),
    config: json(o.config),
    model_config: json(o.modelConfig),
    loader_state: json(o.loaderState),
    rng_state: json(o.rngState),
    trainer_state: json(o.trainerState),
    saved_at: new Date().toISOString(),
  });
  held = null;

  const older = listCheckpoints(dir).filter((c) => c.step < o.step);
  for (const c of older.slice(0, Math.max(0, older.length - (keep - 1)))) {
    await Deno.remove(c.path).catch(() => {});
  }
  return path;
}

/**
 * Move the checkpoints of `dir` at step `from` or later into `dir/abandoned/` (a name already
 * taken there gets a `.N` suffix). Returns the new paths.
 */
export async function setAsideCheckpoints(dir: string, from: number): Promise<string[]> {
  const ahead = listCheckpoints(dir).filter((c) => c.step >= from);
  if (ahead.length === 0) return [];
  const aside = join(dir, ABANDONED);
  await Deno.mkdir(aside, { recursive: true });
  const moved: string[] = [];
  for (const c of ahead) {
    const name = basename(c.path, ".safetensors");
    let to = join(aside, `${name}.safetensors`);
    for (let n = 1; await exists(to); n++) to = join(aside, `${name}.${n}.safetensors`);
    await Deno.rename(c.path, to);
    moved.push(to);
  }
  await syncDir(dir);
  return moved;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** An open checkpoint: metadata parsed, tensors read on request. Close it when done. */
export interface Checkpoint {
  path: string;
  step: number;
  formatVersion: number;
  config: unknown;
  modelConfig: unknown;
  loaderState: unknown;
  rngState: unknown;
  trainerState: unknown;
  /** Whether AdamW moments are stored. */
  hasOptimizer: boolean;
  /** Parameter tensor names (without group prefix) in file order. */
  names: string[];
  /**
   * Read the groups given into flat buffers laid out by `layout`. The file must hold exactly
   * the layout's tensors with the same shapes; errors name the file and tensor.
   */
  readInto(
    layout: readonly TensorSlot[],
    into: { params?: Float32Array; m?: Float32Array; v?: Float32Array },
  ): Promise<void>;
  /** One tensor of one group, into `out` when given. */
  readTensor(group: Group, name: string, out?: Float32Array): Promise<Float32Array>;
  close(): void;
  [Symbol.dispose](): void;
}

/** Open and validate the checkpoint at `path`. */
export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  const reader = await SafetensorsReader.open(path);
  try {
    const meta = reader.metadata;
    if (meta.format !== FORMAT) {
      throw new Error(`${path}: not a repgpt checkpoint (metadata format ${meta.format})`);
    }
    const version = Number(meta.format_version);
    if (version !== CHECKPOINT_FORMAT_VERSION) {
      throw new Error(
        `${path}: checkpoint format version ${meta.format_version}, this build reads ` +
          `${CHECKPOINT_FORMAT_VERSION}`,
      );
    }
    const step = Number(meta.step);
    if (!Number.isSafeInteger(step) || step < 0) throw new Error(`${path}: bad step ${meta.step}`);
    const parse = (key: string) => {
      if (meta[key] === undefined) throw new Error(`${path}: metadata "${key}" is missing`);
      try {
        return JSON.parse(meta[key]);
      } catch (e) {
        throw new Error(`${path}: metadata "${key}" is not JSON: ${(e as Error).message}`);
      }
    };
    const byGroup = new Map<string, string[]>();
    for (const full of reader.names()) {
      const dot = full.indexOf(".");
      const group = full.slice(0, dot), name = full.slice(dot + 1);
      if (dot < 0 || !["params", "adam_m", "adam_v"].includes(group)) {
        throw new Error(`${path}: unexpected tensor "${full}"`);
      }
      if (reader.info(full).dtype !== "F32") {
        throw new Error(`${path}: tensor "${full}" is not F32`);
      }
      byGroup.set(group, [...byGroup.get(group) ?? [], name]);
    }
    const names = byGroup.get("params") ?? [];
    const hasOptimizer = byGroup.has("adam_m") || byGroup.has("adam_v");
    for (const group of hasOptimizer ? ["adam_m", "adam_v"] : []) {
      const got = [...byGroup.get(group) ?? []].sort().join();
      if (got !== [...names].sort().join()) {
        throw new Error(`${path}: ${group} tensors do not match the params tensors`);
      }
    }

    const readTensor = (group: Group, name: string, out?: Float32Array) =>
      reader.readF32(`${group}.${name}`, out);
    const readInto: Checkpoint["readInto"] = async (layout, into) => {
      const wanted = new Set(layout.map((t) => t.name));
      const extra = names.filter((n) => !wanted.has(n));
      if (extra.length > 0) {
        throw new Error(
          `${path}: has tensors this model lacks: ${extra.slice(0, 5).join(", ")}` +
            (extra.length > 5 ? ` (+${extra.length - 5} more)` : ""),
        );
      }
      const targets: [Group, Float32Array][] = [];
      if (into.params) targets.push(["params", into.params]);
      if (into.m) targets.push(["adam_m", into.m]);
      if (into.v) targets.push(["adam_v", into.v]);
      if (!hasOptimizer && (into.m || into.v)) {
        throw new Error(`${path}: holds weights only, no AdamW state to resume from`);
      }
      for (const [group, flat] of targets) {
        for (const t of layout) {
          const full = `${group}.${t.name}`;
          if (!reader.has(full)) throw new Error(`${path}: missing tensor "${full}"`);
          const shape = reader.info(full).shape;
          if (shape.join() !== t.shape.join()) {
            throw new Error(
              `${path}: tensor "${full}" has shape [${shape}], this model expects [${t.shape}]`,
            );
          }
          await reader.readF32(full, flat.subarray(t.offset, t.offset + t.size));
        }
      }
    };
    return {
      path,
      step,
      formatVersion: version,
      config: parse("config"),
      modelConfig: parse("model_config"),
      loaderState: parse("loader_state"),
      rngState: parse("rng_state"),
      trainerState: parse("trainer_state"),
      hasOptimizer,
      names,
      readInto,
      readTensor,
      close: () => reader.close(),
      [Symbol.dispose]: () => reader.close(),
    };
  } catch (e) {
    reader.close();
    throw e;
  }
}

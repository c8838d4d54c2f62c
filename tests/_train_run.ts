/**
 * Helpers for tests that run `deno task train` as a real process on a tiny model and a
 * synthetic token dataset.
 */
import { join } from "node:path";
import { shardHeader } from "../src/data/shard.ts";
import { Rng } from "../src/model/rng.ts";
import { readMetrics } from "../src/log/metrics.ts";

export const TRAIN = new URL("../tasks/train.ts", import.meta.url).pathname;

/** A data dir with llm.c shards of pseudo-random tokens below `vocab`: one val, one train. */
export async function writeTokenData(
  dir: string,
  { train = 40_000, val = 4_000, vocab = 50257, seed = 7 } = {},
): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const rng = new Rng(seed);
  // A little structure (repeated phrases) so the loss can fall, not just random tokens.
  const phrases = Array.from(
    { length: 50 },
    () => Array.from({ length: 8 }, () => rng.nextInt(vocab)),
  );
  const write = async (name: string, count: number) => {
    const tokens = new Uint16Array(count);
    for (let i = 0; i < count;) {
      for (const t of phrases[rng.nextInt(phrases.length)]) if (i < count) tokens[i++] = t;
    }
    const bytes = new Uint8Array(1024 + count * 2);
    bytes.set(shardHeader(count));
    bytes.set(new Uint8Array(tokens.buffer), 1024);
    await Deno.writeFile(join(dir, name), bytes);
  };
  await write("synth_val_000000.bin", val);
  await write("synth_train_000001.bin", train);
  return dir;
}

/** Flags for a fast tiny run; `extra` overrides. */
export function tinyRunArgs(data: string, out: string, extra: string[] = []): string[] {
  return [
    "--model",
    "tiny",
    "--data",
    data,
    "--out",
    out,
    "--batch-size",
    "2",
    "--seq-len",
    "16",
    "--max-steps",
    "12",
    "--lr",
    "1e-2",
    "--warmup-steps",
    "2",
    "--eval-interval",
    "0",
    "--checkpoint-interval",
    "3",
    "--sample-tokens",
    "0",
    // The cpu recipe's Muon would apply: the tests of AdamW's path pin it.
    "--optimizer",
    "adamw",
    ...extra,
  ];
}

/** Start `deno run -A tasks/train.ts ...args`. */
export function spawnTrain(args: string[], env: Record<string, string> = {}): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", TRAIN, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Run training to completion; throws with its output when it fails. */
export async function runTrain(args: string[], env: Record<string, string> = {}): Promise<string> {
  const out = await spawnTrain(args, env).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (out.code !== 0) throw new Error(`train exited ${out.code}:\n${text}`);
  return text;
}

/** Run training to its end: exit code and output (stdout then stderr). */
export async function trainOutcome(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await spawnTrain(args).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** Every file under `dir` (relative path -> bytes), to show later that nothing changed. */
export async function snapshotFiles(dir: string): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  const walk = async (sub: string) => {
    for await (const e of Deno.readDir(join(dir, sub))) {
      const rel = sub ? `${sub}/${e.name}` : e.name;
      if (e.isDirectory) await walk(rel);
      else files.set(rel, await Deno.readFile(join(dir, rel)));
    }
  };
  await walk("");
  return files;
}

/** The files that differ between two snapshots (added, removed or changed), for asserts. */
export function changedFiles(a: Map<string, Uint8Array>, b: Map<string, Uint8Array>): string[] {
  const same = (x?: Uint8Array, y?: Uint8Array) =>
    x !== undefined && y !== undefined && x.length === y.length && x.every((v, i) => v === y[i]);
  return [...new Set([...a.keys(), ...b.keys()])].filter((k) => !same(a.get(k), b.get(k))).sort();
}

/** step -> train_loss from a run's metrics.jsonl. */
export async function trainLosses(out: string): Promise<Map<number, number>> {
  const losses = new Map<number, number>();
  for (const r of await readMetrics(join(out, "metrics.jsonl"))) {
    if (typeof r.train_loss === "number") {
      if (losses.has(r.step)) throw new Error(`metrics.jsonl has step ${r.step} twice`);
      losses.set(r.step, r.train_loss);
    }
  }
  return losses;
}

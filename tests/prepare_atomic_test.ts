/**
 * `deno task prepare` never leaves a dataset half replaced (issue 9, items 3, 10, 13): it builds
 * in a staging folder beside --out and swaps it in at the end. A failure (bad input, empty
 * input, full disk) exits non-zero naming the file and the reason, and the old dataset is
 * byte-identical afterwards, with no staging folder left behind.
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { prepare } from "../src/data/prepare.ts";
import { listSplit } from "../src/data/splits.ts";
import { canMountTmpfs, withTmpfs } from "./_tmpfs.ts";

const PREPARE = new URL("../tasks/prepare.ts", import.meta.url).pathname;
const tmpfsHere = await canMountTmpfs("prepare_atomic_test");

async function runPrepare(args: string[]): Promise<{ code: number; err: string }> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", PREPARE, ...args],
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code, err: new TextDecoder().decode(stderr) };
}

/** Every file under `dir` (recursively) and its bytes. */
function snapshot(dir: string): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const walk = (d: string, rel: string) => {
    for (const e of Deno.readDirSync(d)) {
      if (e.isDirectory) walk(join(d, e.name), rel + e.name + "/");
      else files.set(rel + e.name, Deno.readFileSync(join(d, e.name)));
    }
  };
  walk(dir, "");
  return files;
}

function sentences(n: number, seed: number): string {
  return Array.from({ length: n }, (_, i) => `Sentence ${seed}-${i} about the number ${i * seed}.`)
    .join(" ");
}

/** An existing dataset `ds` (val + 3 train shards) in root/ds, plus a user's notes file. */
async function oldDataset(root: string): Promise<string> {
  const input = join(root, "old.jsonl");
  const docs = Array.from({ length: 6 }, (_, i) => JSON.stringify({ text: sentences(30, i) }));
  Deno.writeTextFileSync(input, docs.join("\n") + "\n");
  const out = join(root, "ds");
  await prepare({
    inputs: [input],
    out,
    name: "ds",
    valDocs: 1,
    shardTokens: 500,
    workers: 1,
    progress: false,
  });
  Deno.writeTextFileSync(join(out, "NOTES.txt"), "my notes");
  assert(listSplit(out, "train").length >= 3);
  return out;
}

function siblings(root: string): string[] {
  return [...Deno.readDirSync(root)].map((e) => e.name).filter((n) => n.startsWith("ds."));
}

Deno.test("prepare: a failure mid-way leaves the old dataset byte-identical", async () => {
  const root = await Deno.makeTempDir({ prefix: "prepare_atomic_" });
  try {
    const out = await oldDataset(root);
    const before = snapshot(out);
    // Many good documents (several train shards get written) and a bad line at the end.
    const lines = Array.from({ length: 300 }, (_, i) => JSON.stringify({ text: sentences(20, i) }));
    const bad = join(root, "new.jsonl");
    Deno.writeTextFileSync(bad, lines.join("\n") + '\n{"text": oops}\n');
    const r = await runPrepare([bad, "--out", out, "--val-docs", "1", "--shard-tokens", "500"]);
    assertEquals(r.code, 1, r.err);
    assert(r.err.includes(`${bad}:301: invalid JSON`), r.err);
    assertEquals(snapshot(out), before, "the old dataset is untouched");
    assertEquals(siblings(root), [], "no staging folder left");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("prepare: a successful rerun swaps in the new shards and keeps the user's other files", async () => {
  const root = await Deno.makeTempDir({ prefix: "prepare_atomic_" });
  try {
    const out = await oldDataset(root);
    const old = [...listSplit(out, "val"), ...listSplit(out, "train")].slice(2);
    Deno.symlinkSync(out, join(root, "link"));
    const input = join(root, "small.txt");
    Deno.writeTextFileSync(input, sentences(5, 9));
    const summary = await prepare({
      inputs: [input],
      out: join(root, "link"),
      name: "ds",
      valDocs: 0,
      shardTokens: 1000,
      workers: 1,
      progress: false,
    });
    assertEquals(summary.files, [join(root, "link", "ds_train_000001.bin")]);
    assertEquals(
      summary.removed,
      [...old, join(out, "ds_val_000000.bin")].map((f) => f.replace(out, join(root, "link"))),
      "the old val shard and train shards from 2 on",
    );
    assert(Deno.lstatSync(join(root, "link")).isSymlink, "the link still points at the dataset");
    assertEquals([...Deno.readDirSync(out)].map((e) => e.name).sort(), [
      "NOTES.txt",
      "ds_train_000001.bin",
    ]);
    assertEquals(Deno.readTextFileSync(join(out, "NOTES.txt")), "my notes");
    assertEquals(siblings(root), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("prepare: empty input is refused naming the input, and writes nothing", async () => {
  const root = await Deno.makeTempDir({ prefix: "prepare_atomic_" });
  try {
    const out = await oldDataset(root);
    const before = snapshot(out);
    const empty = join(root, "empty.txt");
    Deno.writeTextFileSync(empty, "");
    const r = await runPrepare([empty, "--out", out, "--val-docs", "0"]);
    assertEquals(r.code, 1, r.err);
    assert(r.err.includes(`${empty}: the 1 train documents are all empty: no text`), r.err);
    const fresh = join(root, "fresh");
    const none = await runPrepare([empty, "--out", fresh, "--val-docs", "0"]);
    assertEquals(none.code, 1, none.err);
    assertEquals(siblings(root), []);
    await assertRejects(() => Deno.stat(fresh), Deno.errors.NotFound);
    // An empty val split: the first document is empty, the rest have text.
    const jsonl = join(root, "val_empty.jsonl");
    Deno.writeTextFileSync(jsonl, '{"text": ""}\n{"text": "some text"}\n');
    const val = await runPrepare([jsonl, "--out", out, "--val-docs", "1"]);
    assertEquals(val.code, 1, val.err);
    assert(val.err.includes(`${jsonl}: the 1 val documents are all empty`), val.err);
    const noDocs = join(root, "none.jsonl");
    Deno.writeTextFileSync(noDocs, "\n\n");
    const nothing = await runPrepare([noDocs, "--out", out, "--val-docs", "0"]);
    assertEquals(nothing.code, 1, nothing.err);
    assert(nothing.err.includes(`${noDocs}: no documents`), nothing.err);
    assertEquals(snapshot(out), before);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test({
  name: "prepare: a full disk (real ENOSPC on a tmpfs) names the file and keeps the old dataset",
  ignore: !tmpfsHere,
  async fn() {
    const inputs = await Deno.makeTempDir({ prefix: "prepare_enospc_" });
    try {
      await withTmpfs(256, async (root) => {
        const out = await oldDataset(root);
        const before = snapshot(out);
        const big = join(inputs, "big.txt"); // ~0.5 MB of tokens: more than the disk has left
        Deno.writeTextFileSync(big, sentences(25_000, 3));
        const r = await runPrepare([big, "--out", out, "--val-docs", "0"]);
        assertEquals(r.code, 1, r.err);
        assert(r.err.includes("No space left on device"), r.err);
        assert(
          new RegExp(`${out}\\.prepare-\\d+/ds_train_000001\\.bin: cannot write`).test(r.err),
          r.err,
        );
        assertEquals(snapshot(out), before, "the old dataset is untouched");
        assertEquals(siblings(root), [], "the staging folder is removed");
      });
    } finally {
      await Deno.remove(inputs, { recursive: true });
    }
  },
});

Deno.test("prepare: the old dataset left aside by a killed swap is put back", async () => {
  const root = await Deno.makeTempDir({ prefix: "prepare_atomic_" });
  try {
    const out = await oldDataset(root);
    const before = snapshot(out);
    const aside = `${out}.replaced-4194305`; // a dead pid (above Linux's default pid_max)
    Deno.renameSync(out, aside);
    const empty = join(root, "empty.txt");
    Deno.writeTextFileSync(empty, "");
    await assertRejects(
      () =>
        prepare({
          inputs: [empty],
          out,
          name: "ds",
          valDocs: 0,
          shardTokens: 100,
          workers: 1,
          progress: false,
        }),
      Error,
      "all empty",
    );
    assertEquals(snapshot(out), before);
    assertEquals(siblings(root), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

import { join } from "node:path";
import { get_encoding } from "tiktoken";
import { parquetWriteBuffer } from "hyparquet-writer";
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { UsageError } from "../src/commands/flags.ts";
import { prepare, type PrepareOptions } from "../src/data/prepare.ts";
import { prepareMain } from "../src/commands/prepare.ts";
import { shardHeader } from "../src/data/shard.ts";
import { listSplit } from "../src/data/splits.ts";
import { wordnetDocuments } from "../src/data/wordnet.ts";

const EOT = 50256;

/** Mixed input folder; returns the documents in the order prepare must read them. */
function writeInputs(dir: string): string[] {
  const words = "the quick brown fox jumps over the lazy dog, naïve café ünïcödé 🙂 ".split(" ");
  const text = (i: number, n: number) =>
    Array.from({ length: n }, (_, k) => words[(i * 7 + k) % words.length]).join(" ");
  const docs: string[] = [];
  // a.txt: one document per file.
  docs.push("Hello world.\nSecond line <|endoftext|> stays text.");
  Deno.writeTextFileSync(join(dir, "a.txt"), docs[0]);
  // b.jsonl: > 256 KiB, so it spans several jobs, with a blank line and one 300 KB line.
  const lines: string[] = [];
  for (let i = 0; i < 700; i++) {
    const doc = i === 350 ? text(i, 60_000) : text(i, 80);
    docs.push(doc);
    lines.push(JSON.stringify({ id: i, text: doc }));
    if (i === 10) lines.push("");
  }
  Deno.writeTextFileSync(join(dir, "b.jsonl"), lines.join("\n") + "\n");
  // c.parquet: 3 row groups (3 jobs), snappy-compressed.
  const rows = Array.from({ length: 25 }, (_, i) => text(1000 + i, 30 + i));
  docs.push(...rows);
  const parquet = parquetWriteBuffer({
    columnData: [{ name: "id", data: rows.map((_, i) => i), type: "INT32" }, {
      name: "text",
      data: rows,
      type: "STRING",
    }],
    rowGroupSize: 10,
  });
  Deno.writeFileSync(join(dir, "c.parquet"), new Uint8Array(parquet));
  // notes.md is skipped; sub/ comes after c.parquet in name order.
  Deno.writeTextFileSync(join(dir, "notes.md"), "not an input");
  Deno.mkdirSync(join(dir, "sub"));
  docs.push("");
  Deno.writeTextFileSync(join(dir, "sub", "d.txt"), "");
  docs.push("last document");
  Deno.writeTextFileSync(join(dir, "sub", "e.txt"), "last document");
  return docs;
}

/** The expected shard files, from tiktoken (independent of our tokenizer and writer). */
function expectedShards(docs: string[], valDocs: number, shardTokens: number) {
  const enc = get_encoding("r50k_base");
  const stream = (ds: string[]) => ds.flatMap((d) => [EOT, ...enc.encode_ordinary(d)]);
  const val = stream(docs.slice(0, valDocs));
  const train = stream(docs.slice(valDocs));
  enc.free();
  const file = (tokens: number[]) =>
    new Uint8Array([
      ...shardHeader(tokens.length),
      ...new Uint8Array(new Uint16Array(tokens).buffer),
    ]);
  const shards = [file(val)];
  for (let i = 0; i < train.length; i += shardTokens) {
    shards.push(file(train.slice(i, i + shardTokens)));
  }
  return { shards, tokens: val.length + train.length };
}

Deno.test("prepare: txt + jsonl + parquet folder, same bytes at 1 and 2 workers, matches tiktoken", async () => {
  const root = await Deno.makeTempDir();
  const input = join(root, "in");
  Deno.mkdirSync(input);
  const docs = writeInputs(input);
  const expected = expectedShards(docs, 5, 40_000);
  for (const workers of [1, 2]) {
    const out = join(root, `out${workers}`);
    const options: PrepareOptions = {
      inputs: [input],
      out,
      name: "mix",
      valDocs: 5,
      shardTokens: 40_000,
      workers,
      progress: false,
    };
    const summary = await prepare(options);
    assertEquals(summary.docs, docs.length);
    assertEquals(summary.valDocs, 5);
    assertEquals(summary.tokens, expected.tokens);
    assertEquals(summary.files, [
      join(out, "mix_val_000000.bin"),
      ...expected.shards.slice(1).map((_, i) => join(out, `mix_train_00000${i + 1}.bin`)),
    ]);
    assert(expected.shards.length >= 3, "the test must split a document across train shards");
    summary.files.forEach((f, i) => assertEquals(Deno.readFileSync(f), expected.shards[i], f));
    assertEquals(listSplit(out, "train"), summary.files.slice(1));
    assertEquals(
      [...Deno.readDirSync(out)].length,
      summary.files.length,
      "no temporary files left",
    );
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("prepare: a rerun removes stale shards of the same name and dead runs' temp files", async () => {
  const root = await Deno.makeTempDir();
  Deno.writeTextFileSync(join(root, "a.txt"), "one two three four five six seven eight nine ten");
  Deno.writeTextFileSync(join(root, "b.txt"), "a");
  const out = join(root, "out");
  const base = { inputs: [root + "/a.txt", root + "/b.txt"], out, name: "s", valDocs: 1 };
  await prepare({ ...base, shardTokens: 1, workers: 1, progress: false });
  assertEquals(listSplit(out, "train").length, 2); // EOT, "a"
  // What a prepare killed mid-shard leaves: a temporary file, never a shard name.
  const killed = join(out, "s_train_000003.bin.tmp-999999");
  Deno.writeFileSync(killed, new Uint8Array(1024));
  assertEquals(listSplit(out, "train").length, 2);
  const again = await prepare({ ...base, shardTokens: 100, workers: 1, progress: false });
  assertEquals(again.removed, [join(out, "s_train_000002.bin")]);
  assertEquals(listSplit(out, "train"), [join(out, "s_train_000001.bin")]);
  assertEquals([...Deno.readDirSync(out)].length, 2, "the dead run's temporary file is removed");
  await Deno.remove(root, { recursive: true });
});

Deno.test("prepare: bad inputs fail with the file (and line) named, leaving no shard", async (t) => {
  const root = await Deno.makeTempDir();
  const out = join(root, "out");
  const run = (inputs: string[], valDocs = 0) =>
    prepare({ inputs, out, name: "x", valDocs, shardTokens: 1000, workers: 2, progress: false });
  const file = (name: string, data: string | Uint8Array) => {
    const path = join(root, name);
    if (typeof data === "string") Deno.writeTextFileSync(path, data);
    else Deno.writeFileSync(path, data);
    return path;
  };
  const cases: [string, () => string[], string][] = [
    [
      "invalid JSON",
      () => [file("j1.jsonl", '{"text":"ok"}\n{"text":"x"}\n{"text": nope}\n')],
      "j1.jsonl:3: invalid JSON",
    ],
    [
      "no text field",
      () => [file("j2.jsonl", '{"text":"ok"}\n\n{"body":"x"}\n')],
      'j2.jsonl:3: expected an object with a string field "text"',
    ],
    [
      "bad UTF-8",
      () => [file("u.txt", new Uint8Array([0x68, 0xff, 0x69]))],
      "u.txt: not valid UTF-8",
    ],
    ["unknown type", () => [file("x.csv", "a,b")], "x.csv: unsupported file type"],
    ["missing", () => [join(root, "nope.txt")], "nope.txt"],
    [
      "empty folder",
      () => (Deno.mkdirSync(join(root, "empty")), [join(root, "empty")]),
      "no .txt, .jsonl or .parquet",
    ],
    [
      "not parquet",
      () => [file("p.parquet", "PAR1 garbage")],
      "p.parquet: not a readable Parquet file",
    ],
    [
      "no text column",
      () => [
        file(
          "q.parquet",
          new Uint8Array(
            parquetWriteBuffer({ columnData: [{ name: "body", data: ["a"], type: "STRING" }] }),
          ),
        ),
      ],
      'q.parquet: no "text" column (columns: body)',
    ],
    ["all val", () => [file("v.txt", "only doc")], "all 1 documents went to val"],
  ];
  for (const [name, inputs, message] of cases) {
    await t.step(name, async () => {
      await assertRejects(() => run(inputs(), name === "all val" ? 5 : 0), Error, message);
      const left = (() => {
        try {
          return [...Deno.readDirSync(out)].map((e) => e.name);
        } catch {
          return [];
        }
      })();
      assertEquals(left, [], "no shard or temporary file left behind");
      const staging = [...Deno.readDirSync(root)].filter((e) => e.name.startsWith("out."));
      assertEquals(staging, [], "no staging folder left behind");
    });
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("prepare flags: strict parsing, errors name the flag, --help lists defaults", async () => {
  await assertRejects(() => prepareMain(["--bogus"]), UsageError, "--bogus");
  await assertRejects(
    () => prepareMain(["--workers", "0", "--out", "x", "in"]),
    UsageError,
    "--workers",
  );
  await assertRejects(() => prepareMain(["--shard-tokens", "1e3x"]), UsageError, "--shard-tokens");
  await assertRejects(() => prepareMain(["in.txt"]), UsageError, "--out is required");
  const logged: string[] = [];
  const log = console.log;
  console.log = (s: string) => logged.push(s);
  try {
    assertEquals(await prepareMain(["--help"]), null);
  } finally {
    console.log = log;
  }
  assert(logged[0].includes("--shard-tokens N") && logged[0].includes("(default 100000000)"));
  assert(logged[0].includes("--val-docs N"));
});

Deno.test("wordnet corpus: one document per synset, fixed shuffled order", async () => {
  const docs = await wordnetDocuments();
  assertEquals(docs.length, 117_791);
  assertEquals(await wordnetDocuments(), docs, "same order every time");
  assert(docs.includes("dwarf, midget, nanus: a person who is markedly small"));
  const heads = docs.map((d) => d.slice(0, d.indexOf(": ")));
  assert(heads.every((h) => h.length > 0 && !h.includes("_")), "words with spaces, not '_'");
  assert(!heads.some((h) => /\((a|p|ip)\)/.test(h)), "adjective markers dropped");
  assert(!docs[0].startsWith("able: "), "shuffled, not in data-file order (adjectives first)");
});

/**
 * HellaSwag scoring against the held-out float64 numpy GPT-2 (tests/reference/gpt2_numpy.py's
 * `hellaswag`, llm.c's rule written independently): on 100 generated examples in the published
 * format, every ending's summed and mean loss to 1e-5 relative, both predictions and both
 * accuracies exactly. Some rows are longer than the model's context, so the left cut is covered.
 */
import { assert, assertClose, assertEquals } from "./_assert.ts";
import { join } from "node:path";
import { hasNumpy, python, run } from "./_numpy_reference.ts";
import { generateHellaSwag } from "./_hellaswag.ts";
import { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { requestGpu } from "../src/gpu/device.ts";
import { GPT2 } from "../src/model/gpt2.ts";
import { loadHf } from "../src/model/hf.ts";
import { hellaswagRows, readHellaSwag, tokenizeHellaSwag } from "../src/data/hellaswag.ts";
import { scoreHellaSwag } from "../src/train/hellaswag.ts";

const EVAL = new URL("../tasks/eval.ts", import.meta.url).pathname;
const numpyHere = await hasNumpy("hellaswag_test");

/** A small random HF model with GPT-2's vocabulary (HellaSwag rows hold real GPT-2 tokens). */
function makeGpt2VocabModel(dir: string): Promise<string> {
  return python(["make-model", dir, "--vocab-size", "50257", "--n-positions", "64", "--seed", "5"]);
}

Deno.test({
  name: "hellaswag: ending losses, predictions and accuracies match the numpy GPT-2",
  ignore: !numpyHere,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const model = join(dir, "model"), file = join(dir, "hellaswag.jsonl");
      await makeGpt2VocabModel(model);
      await Deno.writeTextFile(file, generateHellaSwag(100, 3));
      const examples = await readHellaSwag(file);
      const tok = await Tokenizer.gpt2();
      const T = 40;
      // The numpy side gets the same token ids: our tokenizer equals tiktoken (tokenizer_test).
      const tokenized = examples.map((ex) => ({
        ctx: [...tok.encode(ex.ctx)],
        endings: ex.endings.map((e) => [...tok.encode(" " + e)]),
        label: ex.label,
      }));
      await Deno.writeTextFile(join(dir, "examples.json"), JSON.stringify(tokenized));
      const want = JSON.parse(
        await python([
          "hellaswag",
          "--model",
          model,
          "--examples",
          join(dir, "examples.json"),
          "--max-len",
          `${T + 1}`,
        ]),
      );
      const { config, params } = await loadHf(model);
      const gpu = await requestGpu();
      const gpt = await GPT2.create(gpu, config, { B: 6, T }); // 6 rows: examples straddle batches
      try {
        gpt.upload("params", params);
        const got = await scoreHellaSwag(gpt, tokenizeHellaSwag(tok, examples));
        assert(
          got.cut > 0 && got.cut < examples.length,
          `cut ${got.cut}: the left cut is exercised`,
        );
        for (const [i, score] of got.scores.entries()) {
          const ref = want.examples[i];
          assertClose(score.sums, ref.sums, { rtol: 1e-5, atol: 0, label: `example ${i} sums` });
          assertClose(score.means, ref.means, { rtol: 1e-5, atol: 0, label: `example ${i} means` });
          assertEquals([score.pred, score.predNorm], [ref.pred, ref.pred_norm], `example ${i}`);
        }
        assertEquals([got.acc, got.accNorm], [want.acc, want.acc_norm]);
        assertEquals(got.examples, 100);
      } finally {
        gpt.destroy();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("hellaswag: rows are ctx + ' ' + ending, cut from the left to fit", async () => {
  const tok = await Tokenizer.gpt2();
  const ex = { ctx: "A man is cooking", endings: ["bread.", "x", "y z", "w"], label: 0, line: 1 };
  const [tokens] = tokenizeHellaSwag(tok, [ex]);
  const full = hellaswagRows(tokens, 100);
  assertEquals([...full.rows[0]], [...tok.encode("A man is cooking bread.")]);
  assertEquals(full.endingTokens[0], tok.encode(" bread.").length);
  assertEquals(full.cut, false);
  const cut = hellaswagRows(tokens, 3);
  assertEquals(cut.rows.map((r) => r.length), [3, 3, 3, 3]);
  assertEquals(cut.cut, true);
});

Deno.test("hellaswag: bad files are errors naming FILE:line and the reason", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const good = JSON.stringify({ ctx: "a", endings: ["b", "c", "d", "e"], label: 1 });
    const cases: [string, string, RegExp][] = [
      ["malformed", `${good}\n{"ctx": "a",\n`, /:2: not a JSON object/],
      [
        "endings",
        `${good}\n${good}\n${JSON.stringify({ ctx: "a", endings: ["b"], label: 0 })}`,
        /:3: "endings" must be 4 strings, got 1 entries/,
      ],
      [
        "label",
        JSON.stringify({ ctx: "a", endings: ["b", "c", "d", "e"], label: 4 }),
        /:1: "label" must be 0, 1, 2 or 3, got 4/,
      ],
      ["empty", "\n\n", /no HellaSwag examples \(the file is empty\)/],
    ];
    for (const [name, text, message] of cases) {
      const file = join(dir, `${name}.jsonl`);
      await Deno.writeTextFile(file, text);
      const err = await readHellaSwag(file).then(() => null, (e: Error) => e.message);
      assert(err !== null && err.startsWith(file) && message.test(err), `${name}: ${err}`);
    }
    const limited = join(dir, "limited.jsonl");
    await Deno.writeTextFile(limited, `${good}\n${good}\n${good}\n`);
    assertEquals((await readHellaSwag(limited, 2)).length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "hellaswag: deno task eval --hellaswag prints the accuracies as its last JSON line",
  ignore: !numpyHere,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const model = join(dir, "model"), file = join(dir, "hellaswag.jsonl");
      await makeGpt2VocabModel(model);
      await Deno.writeTextFile(file, generateHellaSwag(12, 9));
      const { code, out, err } = await run(Deno.execPath(), [
        "run",
        "-A",
        EVAL,
        "--init-from",
        model,
        "--hellaswag",
        file,
        "--hellaswag-limit",
        "10",
      ]);
      assertEquals(code, 0, err);
      const result = JSON.parse(out.trim().split("\n").at(-1)!);
      assertEquals(result.hellaswag_examples, 10);
      assert(result.hellaswag_acc >= 0 && result.hellaswag_acc <= 1, out);
      assert(result.hellaswag_acc_norm >= 0 && result.hellaswag_acc_norm <= 1, out);
      assert(err.includes("hellaswag"), `a progress line on stderr: ${err}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

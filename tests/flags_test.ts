import { assertEquals, assertThrows } from "./_assert.ts";
import { formatHelp, parseFlags, UsageError } from "../src/commands/flags.ts";

const SPEC = {
  lr: { type: "number", default: 1e-2, help: "max learning rate" },
  "max-steps": { type: "integer", default: 90000, min: 1, help: "steps" },
  model: { type: "string", default: "gpt2", choices: ["gpt2", "tiny"], help: "preset" },
  resume: { type: "boolean", default: false, help: "resume" },
  data: { type: "string", help: "data dir" },
} as const;

Deno.test("flags: defaults, conversions and positionals", () => {
  const { values, positionals } = parseFlags(
    ["--lr", "3e-4", "--max-steps=10", "--resume", "a.txt"],
    SPEC,
    { positionals: true },
  );
  assertEquals(values.lr, 3e-4);
  assertEquals(values["max-steps"], 10);
  assertEquals(values.resume, true);
  assertEquals(values.model, "gpt2");
  assertEquals(values.data, undefined);
  assertEquals(positionals, ["a.txt"]);
});

Deno.test("flags: bad input names the flag and the reason", () => {
  assertThrows(
    () => parseFlags(["--lr", "fast"], SPEC),
    UsageError,
    '--lr: expected a number, got "fast"',
  );
  assertThrows(
    () => parseFlags(["--max-steps", "2.5"], SPEC),
    UsageError,
    "--max-steps: expected an integer",
  );
  assertThrows(() => parseFlags(["--max-steps", "0"], SPEC), UsageError, "below the minimum 1");
  assertThrows(
    () => parseFlags(["--model", "gpt5"], SPEC),
    UsageError,
    '"gpt5" is not one of gpt2, tiny',
  );
  assertThrows(() => parseFlags(["--lrr", "1"], SPEC), UsageError, "--lrr");
  assertThrows(() => parseFlags(["stray"], SPEC), UsageError, "stray");
  assertThrows(
    () => parseFlags(["--lr", "-3"], SPEC),
    UsageError,
    "Option '--lr' argument is ambiguous",
  );
});

Deno.test("flags: help lists every flag with its default", () => {
  const help = formatHelp("deno task train [flags]", SPEC);
  for (const name of Object.keys(SPEC)) assertEquals(help.includes(`--${name}`), true, name);
  assertEquals(help.includes("(default 90000)"), true);
});

Deno.test("flags: help shows a default the parser does not apply (one per recipe)", () => {
  const spec = {
    "max-steps": { type: "integer", min: 1, defaultText: "seed 90000, cpu 300", help: "steps" },
  } as const;
  assertEquals(parseFlags([], spec).values["max-steps"], undefined);
  const help = formatHelp("deno task train [flags]", spec);
  assertEquals(help.includes("steps (default seed 90000, cpu 300)"), true, help);
});

/**
 * The option-table machinery: flag names, defaults per recipe, flag specs without parser
 * defaults, and a markdown table that `deno fmt` leaves as it is.
 */
import { assert, assertEquals } from "./_assert.ts";
import { join } from "node:path";
import {
  defaultFor,
  defaultText,
  flagName,
  flagSpecs,
  givenFromFlags,
  optionsMarkdown,
  type OptionTable,
} from "../src/train/option_table.ts";
import { formatHelp, parseFlags } from "../src/commands/flags.ts";

const TABLE = {
  maxSteps: {
    type: "integer",
    min: 1,
    default: { seed: 90000, wordnet: 600, cpu: 300, fast: 20000 },
    help: "steps",
  },
  initFrom: { type: "string", default: null, help: "weights | checkpoint" },
  out: { type: "string", default: "out", env: "SM_MODEL_DIR", help: "output dir" },
  gradAccum: { type: "integer", min: 1, derived: "from --total", help: "micro-steps" },
  beta1: { type: "number", min: 0, max: 1, default: 0.9, help: "AdamW beta1" },
  lr: { type: "number", default: { seed: 1e-2, wordnet: 3e-3, cpu: 3e-3 }, help: "lr" },
  dist: { type: "string", choices: ["socket", "mpi"], default: "socket", help: "transport" },
} as const satisfies OptionTable;

Deno.test("option table: flags are the config keys in kebab case", () => {
  assertEquals(
    Object.keys(TABLE).map(flagName),
    ["max-steps", "init-from", "out", "grad-accum", "beta1", "lr", "dist"],
  );
});

Deno.test("option table: defaults per recipe, and how help shows them", () => {
  assertEquals(
    [defaultFor(TABLE.maxSteps, "seed"), defaultFor(TABLE.maxSteps, "wordnet")],
    [90000, 600],
  );
  assertEquals(defaultFor(TABLE.maxSteps, "cpu"), 300);
  // fast is built on seed: its own default where it has one, else the seed's.
  assertEquals([defaultFor(TABLE.maxSteps, "fast"), defaultFor(TABLE.lr, "fast")], [20000, 1e-2]);
  assertEquals(defaultText(TABLE.lr), "seed 0.01, wordnet 0.003, cpu 0.003, fast 0.01");
  assertEquals(defaultFor(TABLE.initFrom, "cpu"), null);
  assertEquals(defaultFor(TABLE.gradAccum, "seed"), undefined);
  assertEquals(defaultText(TABLE.maxSteps), "seed 90000, wordnet 600, cpu 300, fast 20000");
  assertEquals(defaultText(TABLE.out), "out, or $SM_MODEL_DIR");
  assertEquals(defaultText(TABLE.gradAccum), "from --total");
  assertEquals(defaultText(TABLE.initFrom), undefined);
});

Deno.test("option table: parsed flags keep 'not given' apart from a default", () => {
  const specs = flagSpecs(TABLE);
  const { values } = parseFlags(["--max-steps", "5", "--dist", "mpi"], specs);
  assertEquals(givenFromFlags(TABLE, values), { maxSteps: 5, dist: "mpi" });
  const help = formatHelp("x [flags]", specs);
  assert(help.includes("--max-steps N"), help);
  assert(help.includes("steps (default seed 90000, wordnet 600, cpu 300, fast 20000)"), help);
  assert(help.includes("micro-steps (default from --total)"), help);
});

Deno.test("option table: the markdown table is what deno fmt makes of it", async () => {
  const table = optionsMarkdown(TABLE);
  const lines = table.split("\n");
  assertEquals(lines.length, 2 + Object.keys(TABLE).length);
  assertEquals(new Set(lines.map((l) => l.length)).size, 1, table);
  assert(
    /\| `--max-steps N` +\| `90000` +\| `600` +\| `300` +\| `20000` +\| steps; >= 1 +\|/.test(
      table,
    ),
    table,
  );
  assert(table.includes("weights \\| checkpoint"), table);
  assert(table.includes("`out`, or `$SM_MODEL_DIR`"), table);
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "t.md");
    await Deno.writeTextFile(file, `${table}\n`);
    const fmt = await new Deno.Command(Deno.execPath(), {
      args: ["fmt", "--line-width", "100", file],
      stderr: "piped",
    }).output();
    assertEquals(fmt.code, 0, new TextDecoder().decode(fmt.stderr));
    assertEquals(await Deno.readTextFile(file), `${table}\n`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

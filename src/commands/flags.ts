/**
 * Flag definitions as plain data, parsed with `node:util` parseArgs (strict), with typed
 * numeric validation and a generated `--help`. Shared by the tasks and the compiled binary.
 *
 * ```ts
 * const spec = { lr: { type: "number", default: 1e-2, help: "max learning rate" } } as const;
 * const { values } = parseFlags(["--lr", "3e-4"], spec);
 * values.lr; // 0.0003
 * ```
 */
import { parseArgs } from "node:util";
import { OptionError } from "../train/option_table.ts";

/**
 * One flag: kebab-case name is the key of the spec object. `defaultText` is what help shows
 * when the default is not the parser's (e.g. one per recipe, applied when the config resolves).
 */
export type FlagSpec =
  & { help: string; defaultText?: string }
  & (
    | { type: "string"; default?: string; choices?: readonly string[] }
    | { type: "number"; default?: number; min?: number; max?: number }
    | { type: "integer"; default?: number; min?: number; max?: number }
    | { type: "boolean"; default?: boolean }
  );

/** A set of flags, keyed by kebab-case name. */
export type FlagSpecs = Record<string, FlagSpec>;

type ValueOf<F extends FlagSpec> = F extends { type: "boolean" } ? boolean
  : F extends { type: "string" } ? string
  : number;

/** Parsed values: flags with a default are always present; others may be undefined. */
export type FlagValues<S extends FlagSpecs> = {
  [K in keyof S]: S[K] extends { default: unknown } ? ValueOf<S[K]> : ValueOf<S[K]> | undefined;
};

/** A bad command line: the message names the flag and the reason. Exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Parse `args` against `specs`. Throws {@link UsageError} on unknown or malformed flags. */
export function parseFlags<S extends FlagSpecs>(
  args: readonly string[],
  specs: S,
  { positionals = false }: { positionals?: boolean } = {},
): { values: FlagValues<S>; positionals: string[]; help: boolean } {
  const options: Record<string, { type: "string" | "boolean" }> = {
    help: { type: "boolean" },
  };
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = { type: spec.type === "boolean" ? "boolean" : "string" };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options, strict: true, allowPositionals: positionals });
  } catch (e) {
    // Node's messages can span lines ("argument is ambiguous.\nDid you forget ..."): keep one.
    throw new UsageError((e as Error).message.split("\n")[0].replace(/\. To specify.*$/, ""));
  }
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const raw = parsed.values[name];
    values[name] = raw === undefined ? spec.default : convert(name, spec, raw);
  }
  return {
    values: values as FlagValues<S>,
    positionals: parsed.positionals,
    help: parsed.values.help === true,
  };
}

function convert(name: string, spec: FlagSpec, raw: string | boolean): unknown {
  if (spec.type === "boolean") return raw;
  const text = String(raw);
  if (spec.type === "string") {
    if (spec.choices && !spec.choices.includes(text)) {
      throw new UsageError(`--${name}: "${text}" is not one of ${spec.choices.join(", ")}`);
    }
    return text;
  }
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value)) {
    throw new UsageError(`--${name}: expected a number, got "${text}"`);
  }
  if (spec.type === "integer" && !Number.isInteger(value)) {
    throw new UsageError(`--${name}: expected an integer, got "${text}"`);
  }
  if (spec.min !== undefined && value < spec.min) {
    throw new UsageError(`--${name}: ${value} is below the minimum ${spec.min}`);
  }
  if (spec.max !== undefined && value > spec.max) {
    throw new UsageError(`--${name}: ${value} is above the maximum ${spec.max}`);
  }
  return value;
}

/** `--help` text: usage line, then one line per flag with its default. */
export function formatHelp(usage: string, specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([name, spec]) => {
    const arg = spec.type === "boolean" ? "" : spec.type === "string" ? " S" : " N";
    const text = spec.defaultText ?? spec.default;
    const def = text === undefined ? "" : ` (default ${text})`;
    return [`  --${name}${arg}`, `${spec.help}${def}`];
  });
  rows.push(["  --help", "show this help"]);
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 2;
  return [`usage: ${usage}`, "", ...rows.map(([f, h]) => f.padEnd(width) + h)].join("\n");
}

/**
 * Run a command's main with the shared error policy: a {@link UsageError}, or a library's
 * {@link OptionError} (a run option out of bounds or in conflict), prints its message and exits
 * 2; any other error prints `error: message` and exits 1 (stack with REPGPT_DEBUG=1).
 */
export async function runMain(main: () => Promise<unknown>): Promise<void> {
  try {
    await main();
  } catch (e) {
    if (e instanceof UsageError || e instanceof OptionError) {
      console.error(`error: ${e.message} (see --help)`);
      Deno.exit(2);
    }
    const error = e as Error;
    console.error(`error: ${Deno.env.get("REPGPT_DEBUG") ? error.stack : error.message}`);
    Deno.exit(1);
  }
}

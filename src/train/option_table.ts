/**
 * A declarative table of run options: each entry is one option's type, bounds, help and default
 * (one for every recipe, or one per recipe). The flag specs the command parses, `--help`, the
 * resolved config's type and the README's flag table are all derived from such a table, so an
 * option is written once.
 *
 * An option's key is its config field (camelCase); its flag is the key in kebab case
 * (`initFrom` is `--init-from`).
 */

/**
 * The recipes a default can differ by: the GPT-2 124M seed recipe, one sized to the embedded
 * WordNet corpus on a GPU, the small cpu one for a software adapter, and `fast`, the 124M with
 * Muon, which changes a few of the seed's defaults.
 */
export type Recipe = "seed" | "wordnet" | "cpu" | "fast";

/** The recipes in the order help and docs list them. */
export const RECIPE_NAMES = ["seed", "wordnet", "cpu", "fast"] as const satisfies readonly Recipe[];

/** Recipes built on another: where their own default is absent, their base's applies. */
const RECIPE_BASE = { fast: "seed" } as const satisfies { readonly [R in Recipe]?: Recipe };
type BasedRecipe = keyof typeof RECIPE_BASE;

/** A default per recipe: every recipe's, except those with a base, which may leave it out. */
export type PerRecipe =
  & { readonly [R in Exclude<Recipe, BasedRecipe>]: OptionValue }
  & { readonly [R in BasedRecipe]?: OptionValue };

/** A resolved option value; `null` means unset (e.g. no `--init-from`). */
export type OptionValue = string | number | boolean | null;

/** One run option. */
export interface OptionSpec {
  type: "string" | "number" | "integer" | "boolean";
  help: string;
  min?: number;
  max?: number;
  choices?: readonly string[];
  /** One default for every recipe, one per recipe, or absent where `derived` says how. */
  default?: OptionValue | PerRecipe;
  /** Where the value comes from when not given and there is no `default`, for help and docs. */
  derived?: string;
  /** An environment variable that, when set, replaces the default (SageMaker's channels). */
  env?: string;
  /** `false`: read by the command or by resolution only, not a field of the resolved config. */
  config?: false;
}

/** A table of options keyed by config field. */
export type OptionTable = Record<string, OptionSpec>;

type ValueOf<S extends OptionSpec> = S["type"] extends "boolean" ? boolean
  : S["type"] extends "string" ? (S extends { choices: readonly (infer C)[] } ? C : string)
  : number;

type DefaultOf<S extends OptionSpec> = S extends { default: infer D }
  ? D extends { readonly [R in Exclude<Recipe, BasedRecipe>]: infer A }
    ? A | (D extends { readonly [R in BasedRecipe]: infer B } ? B : never)
  : D
  : never;

/** The options given on the command line, by config field. */
export type GivenOptions<T extends OptionTable> = { -readonly [K in keyof T]?: ValueOf<T[K]> };

/** Resolved options: every config field, `null` where the default is `null`. */
export type ResolvedOptions<T extends OptionTable> = {
  -readonly [K in keyof T as T[K] extends { config: false } ? never : K]:
    | ValueOf<T[K]>
    | (null extends DefaultOf<T[K]> ? null : never);
};

/**
 * A run option out of bounds or in conflict with another: the message names the flags and says
 * which wins or what to do instead. Commands report it as a usage error (exit 2).
 */
export class OptionError extends Error {
  override name = "OptionError";
}

/** `initFrom` -> `init-from`. */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** `spec`'s default under `recipe`; `undefined` when resolution derives it. */
export function defaultFor(spec: OptionSpec, recipe: Recipe): OptionValue | undefined {
  const d = spec.default;
  if (d === null || typeof d !== "object") return d;
  const base = (RECIPE_BASE as { readonly [R in Recipe]?: Recipe })[recipe];
  return recipe in d || !base ? (d as Record<Recipe, OptionValue>)[recipe] : defaultFor(spec, base);
}

/**
 * How help shows a default: `out, or $SM_MODEL_DIR`, `seed 90000, wordnet 600, cpu 300`, or
 * nothing.
 */
export function defaultText(spec: OptionSpec): string | undefined {
  const d = spec.default;
  if (d === undefined) return spec.derived;
  if (d === null) return undefined;
  const text = typeof d === "object"
    ? RECIPE_NAMES.map((r) => `${r} ${defaultFor(spec, r) ?? "none"}`).join(", ")
    : String(d);
  return spec.env ? `${text}, or $${spec.env}` : text;
}

/** A flag spec as the command's parser takes it: no default, so "not given" stays visible. */
export interface OptionFlagSpec {
  type: OptionSpec["type"];
  help: string;
  min?: number;
  max?: number;
  choices?: readonly string[];
  defaultText?: string;
}

/** The table as flag specs keyed by flag name. */
export function flagSpecs(table: OptionTable): Record<string, OptionFlagSpec> {
  return Object.fromEntries(
    Object.entries(table).map(([key, spec]) => {
      const { type, help, min, max, choices } = spec;
      return [flagName(key), { type, help, min, max, choices, defaultText: defaultText(spec) }];
    }),
  );
}

/** Parsed flag values (keyed by flag name) as options keyed by config field. */
export function givenFromFlags<T extends OptionTable>(
  table: T,
  values: Record<string, unknown>,
): GivenOptions<T> {
  const given: Record<string, unknown> = {};
  for (const key of Object.keys(table)) {
    const value = values[flagName(key)];
    if (value !== undefined) given[key] = value;
  }
  return given as GivenOptions<T>;
}

/**
 * The table as a markdown table (flag, a default column per recipe, help), padded the way
 * `deno fmt` pads tables so that formatting README.md leaves it unchanged.
 */
export function optionsMarkdown(table: OptionTable): string {
  const cell = (spec: OptionSpec, recipe: Recipe) => {
    const d = defaultFor(spec, recipe);
    const text = d === undefined ? spec.derived ?? "" : d === null ? "none" : `\`${d}\``;
    return spec.env ? `${text}, or \`$${spec.env}\`` : text;
  };
  const rows = Object.entries(table).map(([key, spec]) => {
    const arg = spec.type === "boolean" ? "" : spec.type === "string" ? " S" : " N";
    const bounds = spec.choices ? ` (${spec.choices.join(", ")})` : boundsText(spec);
    const cells = [
      `\`--${flagName(key)}${arg}\``,
      ...RECIPE_NAMES.map((r) => cell(spec, r)),
      `${spec.help}${bounds}`,
    ];
    return cells.map((c) => c.replaceAll("|", "\\|"));
  });
  const header = ["flag", ...RECIPE_NAMES, "what it sets"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

function boundsText(spec: OptionSpec): string {
  if (spec.min === undefined && spec.max === undefined) return "";
  if (spec.max === undefined) return `; >= ${spec.min}`;
  if (spec.min === undefined) return `; <= ${spec.max}`;
  return `; ${spec.min} to ${spec.max}`;
}

/**
 * WGSL specialisation for generated kernels (matmul, attention): tile sizes rewritten, hot
 * loops unrolled, operand types chosen.
 */

/**
 * Specialises a WGSL source: rewrites `const NAME = ...;` declarations named in `values` (a
 * number becomes a u32, a boolean a bool) and `alias NAME = ...;` declarations named in
 * `aliases` (to the given type; a type of f16 adds `enable f16;`, which needs the device's
 * `shader-f16`), then unrolls every `for (var i = 0u; i < BOUND; i++)` loop preceded by a
 * `// @unroll` line (BOUND: a product or quotient of numbers and the file's consts, evaluated
 * left to right), giving each copy of the body its own block with `i` replaced by its value.
 * wgpu adds a bounding counter to every loop, which costs more than the FMAs in a hot inner
 * loop.
 */
export function specializeWgsl(
  code: string,
  values: Record<string, number | boolean>,
  aliases: Record<string, string> = {},
): string {
  for (const [name, type] of Object.entries(aliases)) {
    const decl = new RegExp(`^alias ${name} = [^;]+;`, "m");
    if (!decl.test(code)) throw new Error(`specializeWgsl: no "alias ${name} = ...;" to rewrite`);
    code = code.replace(decl, `alias ${name} = ${type};`);
  }
  if (Object.values(aliases).some((type) => /\bf16\b/.test(type))) code = `enable f16;\n${code}`;
  const consts = new Map<string, number>();
  code = code.replace(
    /^const (\w+) = ([^;]+);/gm,
    (line, name: string, expr: string) => {
      const value = values[name];
      if (typeof value === "boolean") return `const ${name} = ${value};`;
      if (value !== undefined) {
        consts.set(name, value);
        return `const ${name} = ${value}u;`;
      }
      const evaluated = evalConst(expr, consts);
      if (evaluated !== undefined) consts.set(name, evaluated);
      return line;
    },
  );
  const head = /\/\/ @unroll\n\s*for \(var (\w+) = 0u; \1 < ([^;]+); \1\+\+\) \{/;
  for (let m = head.exec(code); m; m = head.exec(code)) {
    const [, name, boundExpr] = m;
    const bound = evalConst(boundExpr, consts);
    if (bound === undefined) throw new Error(`@unroll: cannot evaluate loop bound "${boundExpr}"`);
    const bodyStart = m.index + m[0].length;
    let depth = 1, i = bodyStart;
    for (; depth > 0; i++) {
      if (i >= code.length) throw new Error(`@unroll: unbalanced braces after "${m[0]}"`);
      if (code[i] === "{") depth++;
      else if (code[i] === "}") depth--;
    }
    const body = code.slice(bodyStart, i - 1);
    const ident = new RegExp(`\\b${name}\\b`, "g");
    const copies = Array.from({ length: bound }, (_, k) => `{${body.replace(ident, `${k}u`)}}`);
    code = code.slice(0, m.index) + copies.join("\n") + code.slice(i);
  }
  return code;
}

/** Value of an expression of integer literals and known consts joined by * / + - (left to right). */
function evalConst(expr: string, consts: Map<string, number>): number | undefined {
  const tokens = expr.trim().split(/\s*([*/+-])\s*/);
  let value = 0;
  let op = "+";
  for (let t = 0; t < tokens.length; t++) {
    if (t % 2 === 1) {
      op = tokens[t];
      continue;
    }
    const lit = /^(\d+)u?$/.exec(tokens[t]);
    const v = lit ? Number(lit[1]) : consts.get(tokens[t]);
    if (v === undefined) return undefined;
    value = op === "+"
      ? value + v
      : op === "-"
      ? value - v
      : op === "*"
      ? value * v
      : Math.floor(value / v);
  }
  return value;
}

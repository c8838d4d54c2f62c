/**
 * WGSL specialisation for generated kernels (matmul, attention): tile sizes rewritten, hot
 * loops unrolled.
 */

/**
 * Specialises a WGSL source: rewrites `const NAME = ...;` declarations named in `values`,
 * then unrolls every `for (var i = 0u; i < BOUND; i++)` loop preceded by a `// @unroll` line
 * (BOUND: a product or quotient of numbers and the file's consts, evaluated left to right),
 * giving each copy of the body its own block with `i` replaced by its value. wgpu adds a
 * bounding counter to every loop, which costs more than the FMAs in a hot inner loop.
 */
export function specializeWgsl(code: string, values: Record<string, number>): string {
  const consts = new Map<string, number>();
  code = code.replace(
    /^const (\w+) = ([^;]+);/gm,
    (line, name: string, expr: string) => {
      if (name in values) {
        consts.set(name, values[name]);
        return `const ${name} = ${values[name]}u;`;
      }
      const value = evalConst(expr, consts);
      if (value !== undefined) consts.set(name, value);
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

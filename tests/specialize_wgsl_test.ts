import { assertEquals } from "./_assert.ts";
import { specializeWgsl } from "../src/gpu/specialize_wgsl.ts";

Deno.test("specializeWgsl: rewrites consts and unrolls marked loops", () => {
  const code = "const A = 2u;\nconst B = A * 3u;\nfn f() {\n  // @unroll\n" +
    "  for (var i = 0u; i < B / A; i++) {\n    x[i] = y[i];\n  }\n}";
  const out = specializeWgsl(code, { A: 4 });
  assertEquals(out.includes("const A = 4u;"), true);
  assertEquals(out.includes("for"), false);
  assertEquals(out.match(/x\[\du\] = y\[\du\];/g)?.length, 3);
});

import { assertEquals, assertThrows } from "./_assert.ts";
import { specializeWgsl } from "../src/gpu/specialize_wgsl.ts";

Deno.test("specializeWgsl: rewrites consts and unrolls marked loops", () => {
  const code = "const A = 2u;\nconst B = A * 3u;\nfn f() {\n  // @unroll\n" +
    "  for (var i = 0u; i < B / A; i++) {\n    x[i] = y[i];\n  }\n}";
  const out = specializeWgsl(code, { A: 4 });
  assertEquals(out.includes("const A = 4u;"), true);
  assertEquals(out.includes("for"), false);
  assertEquals(out.match(/x\[\du\] = y\[\du\];/g)?.length, 3);
});

Deno.test("specializeWgsl: rewrites bool consts and type aliases; f16 enables the extension", () => {
  const code = "alias mul = f32;\nconst F16 = false;\nfn f(x: mul) -> mul { return x; }";
  const f16 = specializeWgsl(code, { F16: true }, { mul: "f16" });
  assertEquals(f16.split("\n").slice(0, 3), [
    "enable f16;",
    "alias mul = f16;",
    "const F16 = true;",
  ]);
  assertEquals(specializeWgsl(code, {}).startsWith("alias mul = f32;"), true);
  assertThrows(() => specializeWgsl(code, {}, { dot_t: "f16" }), Error, 'no "alias dot_t');
});

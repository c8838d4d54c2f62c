/**
 * The folders under src/ are layers that import only downward (README "Layout"): a file may
 * import from its own folder or a lower layer, never a higher one, so no two folders import
 * each other. The import graph is Deno's own (`deno info --json`), static, dynamic and
 * type-only imports alike, from a root that imports every source file (Worker entry points
 * included, which no static import reaches).
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";

/** Bottom to top. `kernels/` (WGSL and the WASM tokenizer) are assets below all of them. */
export const LAYERS = [
  "io",
  "log",
  "gpu",
  "tokenizer",
  "data",
  "optim",
  "model",
  "distributed",
  "train",
  "commands",
] as const;

const ROOT = new URL("..", import.meta.url).pathname;

function sourceFiles(dir: string): string[] {
  return [...Deno.readDirSync(dir)].flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory) return sourceFiles(path);
    return e.isFile && e.name.endsWith(".ts") ? [path] : [];
  });
}

/** `src/<folder>/...` → its layer's index; kernels/ → -1; anything else (tasks/) → top. */
function layerOf(path: string): { name: string; index: number } {
  const rel = relative(ROOT, path);
  if (rel.startsWith("kernels/")) return { name: "kernels", index: -1 };
  const folder = rel.split("/")[1];
  const index = rel.startsWith("src/") ? LAYERS.indexOf(folder as typeof LAYERS[number]) : -2;
  if (index === -2) return { name: rel.split("/")[0], index: LAYERS.length };
  assert.ok(index >= 0, `${rel}: src/${folder}/ is not in the layer list of tests/layers_test.ts`);
  return { name: folder, index };
}

interface InfoModule {
  local?: string;
  dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
}

Deno.test("layers: every import under src/ goes to the same folder or a lower layer", async () => {
  const files = sourceFiles(join(ROOT, "src"));
  const dir = await Deno.makeTempDir();
  try {
    const root = join(dir, "all.ts");
    await Deno.writeTextFile(
      root,
      files.map((f) => `import type {} from "${new URL(`file://${f}`).href}";`).join("\n"),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", root],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const { modules } = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      modules: InfoModule[];
    };
    const violations: string[] = [];
    let edges = 0;
    for (const m of modules) {
      if (!m.local?.startsWith(join(ROOT, "src/"))) continue;
      const from = layerOf(m.local);
      for (const dep of m.dependencies ?? []) {
        for (const spec of [dep.code?.specifier, dep.type?.specifier]) {
          if (!spec?.startsWith("file://")) continue;
          const target = new URL(spec).pathname;
          const to = layerOf(target);
          edges++;
          if (to.index > from.index) {
            violations.push(
              `${relative(ROOT, m.local)} (${from.name}) imports ${relative(ROOT, target)} ` +
                `(${to.name}, a higher layer)`,
            );
          }
        }
      }
    }
    assert.ok(edges > 100, `only ${edges} imports seen: the graph was not read`);
    assert.deepEqual(violations, [], `imports from a higher layer:\n${violations.join("\n")}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("layers: every folder under src/ has a place in the order", () => {
  const folders = [...Deno.readDirSync(join(ROOT, "src"))].filter((e) => e.isDirectory)
    .map((e) => e.name).sort();
  assert.deepEqual(folders, [...LAYERS].sort());
});

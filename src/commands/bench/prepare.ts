/**
 * `deno task bench prepare [--input PATH] [--mb N] [--repeat N]`: prepare's throughput with 1
 * and 2 tokenizer Workers on the same input, a check that both outputs are byte-identical, and
 * the speedup. Default input: a generated jsonl of about `--mb` MB whose documents are runs of
 * WordNet entries (~3 kB each, the size of a web page in OpenWebText). Times include starting
 * the Workers. Best of `--repeat` runs, alternating 1 and 2 Workers so that load from other
 * processes hits both alike; the load average is printed because this machine is shared.
 */
import { join } from "node:path";
import { parseFlags } from "../flags.ts";
import { formatCount } from "../../log/progress.ts";
import { prepare, type PrepareSummary } from "../../data/prepare.ts";
import { wordnetDocuments } from "../../data/wordnet.ts";

const FLAGS = {
  input: { type: "string", help: "input file or folder (default: generated jsonl)" },
  mb: {
    type: "number",
    min: 1,
    default: 256,
    help:
      "size of the generated jsonl in MB (each Worker pays ~0.3 s of tokenizer start-up: small inputs understate the speedup)",
  },
  repeat: { type: "integer", min: 1, default: 2, help: "runs per worker count (best is kept)" },
} as const;

/** Write about `mb` MB of jsonl made of WordNet entries; returns its path. */
async function generateJsonl(dir: string, mb: number): Promise<string> {
  const entries = await wordnetDocuments();
  const path = join(dir, "bench.jsonl");
  const lines: string[] = [];
  let bytes = 0, i = 0;
  while (bytes < mb * 1e6) {
    const doc: string[] = [];
    for (let n = 0; n < 3000;) {
      const e = entries[i++ % entries.length];
      doc.push(e);
      n += e.length + 1;
    }
    const line = JSON.stringify({ text: doc.join("\n") });
    lines.push(line);
    bytes += line.length + 1;
  }
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  return path;
}

/**
 * CPU seconds so far of the main thread, of V8/tokio helper threads, and of the whole process
 * (which keeps the time of exited threads such as terminated Workers), from Linux /proc.
 * Unlike wall time, these do not depend on what else the machine is running.
 */
function cpuSeconds(): { main: number; helpers: number; process: number } | null {
  const ticks = (stat: string) => {
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, USER_HZ = 100
  };
  try {
    let main = 0, helpers = 0;
    for (const e of Deno.readDirSync("/proc/self/task")) {
      const stat = Deno.readTextFileSync(`/proc/self/task/${e.name}/stat`);
      if (Number(e.name) === Deno.pid) main = ticks(stat);
      else if (!stat.includes("(worker-")) helpers += ticks(stat);
    }
    return { main, helpers, process: ticks(Deno.readTextFileSync("/proc/self/stat")) };
  } catch {
    return null;
  }
}

function filesEqual(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((f, i) => {
    const x = Deno.readFileSync(f), y = Deno.readFileSync(b[i]);
    return x.length === y.length && x.every((v, k) => v === y[k]);
  });
}

/** Run the benchmark. */
export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, FLAGS);
  const dir = await Deno.makeTempDir({ prefix: "repgpt_bench_prepare_" });
  try {
    const input = values.input ?? await generateJsonl(dir, values.mb);
    const best: Record<number, PrepareSummary> = {};
    const cpu: Record<number, string> = {};
    const cpuOf: Record<number, { main: number; workers: number }> = {
      1: { main: 0, workers: 0 },
      2: { main: 0, workers: 0 },
    };
    for (let r = 0; r < values.repeat; r++) {
      for (const workers of [1, 2]) {
        const before = cpuSeconds();
        const summary = await prepare({
          inputs: [input],
          out: join(dir, `out${workers}`),
          name: "bench",
          valDocs: 100,
          shardTokens: 100_000_000,
          workers,
          progress: false,
        });
        const after = cpuSeconds();
        if (!best[workers] || summary.seconds < best[workers].seconds) {
          best[workers] = summary;
          if (before && after) {
            const main = after.main - before.main;
            const helpers = after.helpers - before.helpers;
            const tokenizer = after.process - before.process - main - helpers;
            cpuOf[workers] = { main, workers: tokenizer };
            cpu[workers] = `CPU s: main thread ${main.toFixed(2)} ` +
              `(${((100 * main) / summary.seconds).toFixed(0)}% of wall), Workers ` +
              `${tokenizer.toFixed(2)}, V8/IO helpers ${helpers.toFixed(2)}`;
          }
        }
      }
    }
    console.log(
      `prepare bench: ${input}, ${formatCount(best[1].inputBytes, "B")}, ` +
        `${best[1].docs} docs, ${best[1].tokens} tokens; best of ${values.repeat}`,
    );
    for (const w of [1, 2]) {
      const s = best[w];
      console.log(
        `  workers ${w}: ${s.seconds.toFixed(2)} s  ${
          formatCount(s.inputBytes / s.seconds, "B")
        }/s  ` +
          `${formatCount(s.docs / s.seconds, "docs")}/s  ${
            formatCount(s.tokens / s.seconds, "tokens")
          }/s` + (cpu[w] ? `\n    ${cpu[w]}` : ""),
      );
    }
    // On free cores the critical path is the busier of the main thread and one Worker (each
    // Worker does its share of the tokenizing plus its own tokenizer start-up).
    const path1 = Math.max(cpuOf[1].main, cpuOf[1].workers);
    const path2 = Math.max(cpuOf[2].main, cpuOf[2].workers / 2);
    if (path1 > 0 && path2 > 0) {
      console.log(`  speedup on 2 free cores, from CPU times: ${(path1 / path2).toFixed(2)}x`);
    }
    const same = filesEqual(best[1].files, best[2].files);
    console.log(`  outputs byte-identical: ${same ? "yes" : "NO"}`);
    console.log(
      `  speedup 2 vs 1 workers: ${(best[1].seconds / best[2].seconds).toFixed(2)}x ` +
        `(target >= 1.6x; ${navigator.hardwareConcurrency} CPUs, load average ` +
        `${Deno.loadavg().map((l) => l.toFixed(2)).join(" ")})`,
    );
    if (!same) throw new Error("prepare outputs differ between 1 and 2 workers");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main(Deno.args);

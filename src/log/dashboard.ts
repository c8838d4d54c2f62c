/**
 * The live dashboard: an HTTP server on 127.0.0.1 serving one page (dashboard_page.html) that
 * charts one or more run folders as they train.
 *
 * Routes, and nothing else (any other path, run-folder files included, is a 404; the server never
 * maps a URL to a file path):
 *   `/`            the page
 *   `/uplot.js`    uPlot's script, `/uplot.css` its style: from the npm package, embedded by
 *                  `deno compile` through text imports, so the page works offline
 *   `/events`      server-sent events: a `run` event per run with all its records and info on
 *                  connect (and again when a run's metrics.jsonl is replaced), then `update`
 *                  events with the records appended since
 *   `/api/runs`    the same state as one JSON document (for scripts)
 *
 * Every `pollMs` (default 500 ms) each run folder is polled for appended lines, so a point shows
 * on the page well within 2 s of being written. Requests whose Host is not this loopback address
 * are refused (403), so a web page elsewhere cannot read a run through DNS rebinding.
 */
import page from "./dashboard_page.html" with { type: "text" };
import uplotJs from "uplot/dist/uPlot.iife.min.js" with { type: "text" };
import uplotCss from "uplot/dist/uPlot.min.css" with { type: "text" };
import { RunWatcher } from "./dashboard_run.ts";
import { RUN_COLORS } from "./plot_svg.ts";

/** What to serve. */
export interface DashboardOptions {
  /** Run folders (they may not exist yet: a run starting beside the dashboard creates them). */
  runs: readonly string[];
  /** Port on 127.0.0.1; 0 or absent picks a free one. */
  port?: number;
  /** How often run folders are read, in ms. */
  pollMs?: number;
}

/** A running dashboard. */
export interface Dashboard {
  /** `http://127.0.0.1:PORT/` */
  url: string;
  port: number;
  /** Stop polling, end open event streams and close the server. */
  close(): Promise<void>;
}

const HOST = "127.0.0.1";
const ASSETS: Record<string, [string, string]> = {
  "/": [page.replace("__RUN_COLORS__", JSON.stringify(RUN_COLORS)), "text/html; charset=utf-8"],
  "/uplot.js": [uplotJs, "text/javascript; charset=utf-8"],
  "/uplot.css": [uplotCss, "text/css; charset=utf-8"],
};

/** Start the server; throws naming the port when it is taken. */
export async function startDashboard(o: DashboardOptions): Promise<Dashboard> {
  const runs = o.runs.map((dir) => new RunWatcher(dir));
  await Promise.all(runs.map((r) => r.poll()));
  const clients = new Set<ReadableStreamDefaultController<Uint8Array>>();
  const encoder = new TextEncoder();
  const send = (c: ReadableStreamDefaultController<Uint8Array>, event: string, data: unknown) =>
    c.enqueue(encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
  const runEvent = (id: number) => ({ id, ...runs[id].info(), records: runs[id].records });
  const broadcast = (event: string, data: unknown) => {
    for (const c of clients) {
      try {
        send(c, event, data);
      } catch {
        clients.delete(c); // the page went away
      }
    }
  };

  let port = 0;
  const handler = (req: Request): Response => {
    const url = new URL(req.url);
    const host = req.headers.get("host") ?? "";
    if (host !== `${HOST}:${port}` && host !== `localhost:${port}`) {
      return new Response(`refused: Host "${host}" is not ${HOST}:${port}\n`, { status: 403 });
    }
    if (req.method !== "GET") return new Response("only GET\n", { status: 405 });
    const asset = ASSETS[url.pathname];
    if (asset) {
      return new Response(asset[0], {
        headers: { "content-type": asset[1], "cache-control": "no-cache" },
      });
    }
    if (url.pathname === "/api/runs") {
      return Response.json(runs.map((_, id) => runEvent(id)));
    }
    if (url.pathname === "/events") {
      let controller: ReadableStreamDefaultController<Uint8Array>;
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          controller = c;
          clients.add(c);
          for (let id = 0; id < runs.length; id++) send(c, "run", runEvent(id));
        },
        cancel() {
          clients.delete(controller);
        },
      });
      return new Response(body, {
        headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
      });
    }
    return new Response(`not found: ${url.pathname}\n`, { status: 404 });
  };

  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({ hostname: HOST, port: o.port ?? 0, onListen() {} }, handler);
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      throw new Error(`dashboard: port ${o.port} on ${HOST} is in use; pick another with --port`);
    }
    throw e;
  }
  port = server.addr.port;

  let stopped = false, timer: ReturnType<typeof setTimeout> | undefined;
  const tick = async () => {
    for (let id = 0; id < runs.length && !stopped; id++) {
      try {
        const change = await runs[id].poll();
        if (!change) continue;
        if (change.reset) broadcast("run", runEvent(id));
        else broadcast("update", { id, ...runs[id].info(), records: change.records });
      } catch (e) {
        console.warn(`warning: dashboard: ${runs[id].dir}: ${(e as Error).message}`);
      }
    }
    if (!stopped) timer = setTimeout(tick, o.pollMs ?? 500);
  };
  timer = setTimeout(tick, o.pollMs ?? 500);

  return {
    url: `http://${HOST}:${port}/`,
    port,
    async close() {
      stopped = true;
      clearTimeout(timer);
      for (const c of clients) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      clients.clear();
      await server.shutdown();
    },
  };
}

/**
 * Headless chromium driven over the DevTools protocol (a WebSocket from Deno), for tests that
 * load a page in a real browser: open a URL, evaluate expressions in it, take screenshots.
 *
 * Debian's `chromium` package (or `$CHROMIUM`). Under `CI=true` a missing browser is a failure
 * (`.ci/run` installs it); elsewhere the tests are skipped with a loud reason.
 */
import { join } from "node:path";

/** The chromium binary to use, or null when none runs here. */
export async function findChromium(): Promise<string | null> {
  const names = [Deno.env.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"];
  for (const name of names) {
    if (!name) continue;
    try {
      const { code } = await new Deno.Command(name, {
        args: ["--version"],
        stdout: "null",
        stderr: "null",
      }).output();
      if (code === 0) return name;
    } catch { /* not installed under this name */ }
  }
  return null;
}

/**
 * Chromium for `testFile`: its path; null (said loudly) when there is none and not under CI;
 * under `CI=true` a missing browser throws, so the test fails instead of being skipped.
 */
export async function chromiumFor(testFile: string): Promise<string | null> {
  const found = await findChromium();
  if (found) return found;
  const why = "chromium is not installed (apt-get install chromium, or set CHROMIUM=path)";
  if (Deno.env.get("CI") === "true") throw new Error(`${testFile}: ${why}; CI must run it`);
  console.error(`\n*** ${testFile}: browser tests SKIPPED: ${why} ***\n`);
  return null;
}

/** A headless chromium process and one DevTools connection to it. */
export class Chromium {
  #id = 0;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(
    readonly process: Deno.ChildProcess,
    readonly profile: string,
    readonly ws: WebSocket,
  ) {
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      const waiter = this.#pending.get(msg.id);
      if (!waiter) return; // an event
      this.#pending.delete(msg.id);
      if (msg.error) waiter.reject(new Error(`DevTools: ${JSON.stringify(msg.error)}`));
      else waiter.resolve(msg.result);
    };
  }

  /** Start `binary` headless with a fresh profile and connect to it. */
  static async launch(binary: string, { width = 1280, height = 900 } = {}): Promise<Chromium> {
    const profile = await Deno.makeTempDir({ prefix: "chromium_profile_" });
    const process = new Deno.Command(binary, {
      args: [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--remote-debugging-port=0",
        `--user-data-dir=${profile}`,
        `--window-size=${width},${height}`,
        "about:blank",
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    // Chromium writes its DevTools port and browser path here once it listens.
    const portFile = join(profile, "DevToolsActivePort");
    const deadline = Date.now() + 60_000;
    let lines: string[] = [];
    while (lines.length < 2) {
      if (Date.now() > deadline) {
        process.kill("SIGKILL");
        throw new Error(`${binary}: no DevToolsActivePort after 60 s`);
      }
      await new Promise((r) => setTimeout(r, 100));
      lines = await Deno.readTextFile(portFile).then((t) => t.trim().split("\n"), () => []);
    }
    const ws = new WebSocket(`ws://127.0.0.1:${lines[0]}${lines[1]}`);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error(`${binary}: DevTools WebSocket failed`));
    });
    return new Chromium(process, profile, ws);
  }

  /** Send one DevTools command (to a page when `sessionId` is given); its result. */
  send<T = unknown>(method: string, params: object = {}, sessionId?: string): Promise<T> {
    const id = ++this.#id;
    this.ws.send(JSON.stringify({ id, method, params, sessionId }));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`DevTools: ${method} got no answer in 30 s`));
      }, 30_000);
      this.#pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v as T)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });
  }

  /** Open `url` in a new tab; the tab's session. */
  async open(url: string): Promise<Page> {
    const { targetId } = await this.send<{ targetId: string }>("Target.createTarget", { url });
    const { sessionId } = await this.send<{ sessionId: string }>("Target.attachToTarget", {
      targetId,
      flatten: true,
    });
    return new Page(this, sessionId);
  }

  /** Close the browser and remove its profile. */
  async close(): Promise<void> {
    try {
      await this.send("Browser.close");
    } catch { /* already gone */ }
    this.ws.close();
    const timer = setTimeout(() => this.process.kill("SIGKILL"), 10_000);
    await this.process.status;
    clearTimeout(timer);
    await Deno.remove(this.profile, { recursive: true }).catch(() => {});
  }
}

/** One tab. */
export class Page {
  constructor(readonly browser: Chromium, readonly sessionId: string) {}

  /** The JSON value of `expression` evaluated in the page (awaited if a promise). */
  async evaluate<T = unknown>(expression: string): Promise<T> {
    const { result, exceptionDetails } = await this.browser.send<{
      result: { value: unknown };
      exceptionDetails?: { text: string };
    }>("Runtime.evaluate", {
      expression,
      returnByValue: true,
      awaitPromise: true,
    }, this.sessionId);
    if (exceptionDetails) throw new Error(`page: ${expression}: ${exceptionDetails.text}`);
    return result.value as T;
  }

  /** Evaluate `expression` every 50 ms until it is truthy; its value, and how long it took. */
  async waitFor<T = unknown>(
    expression: string,
    timeoutMs = 30_000,
  ): Promise<{ value: T; ms: number }> {
    const start = performance.now();
    while (true) {
      const value = await this.evaluate<T>(expression).catch(() => undefined);
      const ms = performance.now() - start;
      if (value) return { value, ms };
      if (ms > timeoutMs) throw new Error(`page: still false after ${timeoutMs} ms: ${expression}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** A PNG of the visible page. */
  async screenshot(): Promise<Uint8Array> {
    const { data } = await this.browser.send<{ data: string }>(
      "Page.captureScreenshot",
      { format: "png" },
      this.sessionId,
    );
    return Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  }
}

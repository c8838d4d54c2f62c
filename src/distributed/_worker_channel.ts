/**
 * The main thread's side of a transport Worker (the socket ring's, the shared-memory one's):
 * numbered requests, each resolved by the Worker's reply with the same id. The first failure
 * breaks the channel: every pending and later request rejects with it.
 */

/** What a transport Worker answers: request `id` is done, with `error` if it failed. */
export interface WorkerReply {
  id: number;
  error?: string;
}

type Pending = { resolve: (reply: WorkerReply) => void; reject: (e: Error) => void };

/** Requests to a module Worker, answered in any order by id. */
export class WorkerChannel<Request extends { id: number }> {
  #worker: Worker;
  #nextId = 0;
  #pending = new Map<number, Pending>();
  #broken: Error | undefined;

  /** Starts `module` as a module Worker; `rank` names this process in crash messages. */
  constructor(module: URL, rank: number) {
    this.#worker = new Worker(module, { type: "module" });
    this.#worker.onmessage = (e: MessageEvent<WorkerReply>) => {
      const reply = e.data;
      const p = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if (reply.error === undefined) return p?.resolve(reply);
      this.#broken ??= new Error(reply.error);
      p?.reject(new Error(reply.error));
    };
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#break(new Error(`rank ${rank}: all-reduce worker crashed: ${e.message}`));
    };
  }

  /** The failure that broke the channel, if any. */
  get broken(): Error | undefined {
    return this.#broken;
  }

  /** Sends `req` with a fresh id; resolves with the Worker's reply. */
  request<Reply extends WorkerReply = WorkerReply>(req: Request): Promise<Reply> {
    if (this.#broken) return Promise.reject(this.#broken);
    req.id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      this.#pending.set(req.id, { resolve: resolve as (r: WorkerReply) => void, reject });
      this.#worker.postMessage(req);
    });
  }

  /** Stops the Worker; pending and later requests reject with `why` (unless already broken). */
  terminate(why: Error): void {
    this.#worker.terminate();
    this.#break(why);
  }

  #break(e: Error): void {
    this.#broken ??= e;
    for (const p of this.#pending.values()) p.reject(this.#broken);
    this.#pending.clear();
  }
}

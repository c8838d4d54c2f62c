/**
 * A fixed pool of prepare Workers ({@link ./_prepare_worker.ts}). `run(job)` resolves with the
 * job's tokens; jobs beyond the idle Workers wait in a queue. The caller bounds how many jobs it
 * has in flight and awaits them in submission order, which keeps the output order fixed.
 */
import type { Job } from "./inputs.ts";
import type { WorkerResult } from "./_prepare_worker.ts";

/** A job's tokens (see {@link WorkerResult}). */
export interface Tokenized {
  tokens: Uint16Array;
  docTokens: Uint32Array;
}

interface Task {
  seq: number;
  job: Job;
  resolve: (t: Tokenized) => void;
  reject: (e: Error) => void;
}

/** Workers tokenizing prepare jobs. Call {@link close} when done. */
export class TokenizePool {
  #idle: Worker[] = [];
  #all: Worker[] = [];
  #queue: Task[] = [];
  #running = new Map<number, Task>();
  #seq = 0;
  #failure: Error | null = null;

  constructor(workers: number) {
    for (let i = 0; i < workers; i++) {
      const worker = new Worker(new URL("./_prepare_worker.ts", import.meta.url), {
        type: "module",
      });
      worker.onmessage = (e: MessageEvent<WorkerResult>) => this.#finished(worker, e.data);
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        this.#fail(new Error(`tokenizer worker crashed: ${e.message}`));
      };
      this.#all.push(worker);
      this.#idle.push(worker);
    }
  }

  /** Tokenize one job on the next free Worker. */
  run(job: Job): Promise<Tokenized> {
    return new Promise((resolve, reject) => {
      if (this.#failure) return reject(this.#failure);
      const task = { seq: this.#seq++, job, resolve, reject };
      const worker = this.#idle.pop();
      if (worker) this.#send(worker, task);
      else this.#queue.push(task);
    });
  }

  /** Stop the Workers. */
  close(): void {
    for (const w of this.#all) w.terminate();
    this.#all = this.#idle = [];
  }

  #send(worker: Worker, task: Task): void {
    this.#running.set(task.seq, task);
    const { job } = task;
    // Hand the input bytes over instead of copying them.
    const transfer = job.kind === "txt"
      ? job.data.map((d) => d.buffer as ArrayBuffer)
      : job.kind === "jsonl"
      ? [job.data.buffer as ArrayBuffer]
      : [];
    worker.postMessage({ seq: task.seq, job }, transfer);
  }

  #finished(worker: Worker, result: WorkerResult): void {
    const task = this.#running.get(result.seq);
    if (!task) return;
    this.#running.delete(result.seq);
    if ("error" in result) task.reject(new Error(result.error));
    else task.resolve({ tokens: result.tokens, docTokens: result.docTokens });
    const next = this.#queue.shift();
    if (next) this.#send(worker, next);
    else this.#idle.push(worker);
  }

  #fail(error: Error): void {
    this.#failure = error;
    for (const task of [...this.#running.values(), ...this.#queue]) task.reject(error);
    this.#running.clear();
    this.#queue = [];
  }
}

/**
 * Worker that owns the ring's sockets, so collectives keep moving while the main thread blocks
 * on the GPU. Requests are served one at a time in arrival order (every rank issues the same
 * sequence); data arrives as Float32Arrays on SharedArrayBuffers and is reduced in place.
 */
/// <reference lib="deno.worker" />
import { type ReduceOp, Ring, type RingOptions } from "./_ring.ts";
import type { WorkerReply } from "./_worker_channel.ts";

/** Main thread to worker. `data` views a SharedArrayBuffer. */
export type RingRequest =
  | {
    type: "connect";
    id: number;
    dir: string;
    rank: number;
    worldSize: number;
    connectTimeoutMs: number;
    options: RingOptions;
  }
  | { type: "allReduce"; id: number; data: Float32Array; op: ReduceOp }
  | { type: "broadcast"; id: number; data: Float32Array; root: number }
  | { type: "close"; id: number };

let ring: Ring | undefined;
let queue = Promise.resolve();

async function serve(req: RingRequest): Promise<void> {
  switch (req.type) {
    case "connect":
      ring = await Ring.connect(
        req.dir,
        req.rank,
        req.worldSize,
        req.connectTimeoutMs,
        req.options,
      );
      return;
    case "allReduce":
      return await connected().allReduce(req.data, req.op);
    case "broadcast":
      return await connected().broadcast(req.data, req.root);
    case "close":
      return; // done on arrival
  }
}

function connected(): Ring {
  if (!ring) throw new Error("ring used before it connected");
  return ring;
}

self.onmessage = (e: MessageEvent<RingRequest>) => {
  const req = e.data;
  // Close at once rather than in turn: a collective stuck on a hung peer fails now, not later.
  if (req.type === "close") ring?.close();
  queue = queue.then(async () => {
    const reply: WorkerReply = { id: req.id };
    try {
      await serve(req);
    } catch (err) {
      reply.error = err instanceof Error ? err.message : String(err);
    }
    self.postMessage(reply);
  });
};

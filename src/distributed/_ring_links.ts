/**
 * The ring's links: rank r dials rank r+1 ("next") and accepts rank r-1 ("prev") on Unix sockets
 * in the job's folder, each link opened with a 16-byte hello (magic, world size, rank) so ranks
 * of two jobs sharing a folder cannot pair up.
 */
import { socketPath } from "./socket_dir.ts";

/** First word of every hello and collective header: "RGPT". */
export const RING_MAGIC = 0x54504752;
const MAGIC = RING_MAGIC;

/** Connect to rank `next`'s socket, retrying until it listens or `deadline` (ms) passes. */
export async function dialNext(
  dir: string,
  rank: number,
  worldSize: number,
  next: number,
  deadline: number,
  prefix?: string,
): Promise<Deno.Conn> {
  const path = socketPath(dir, next, prefix);
  for (;;) {
    try {
      const conn = await Deno.connect({ transport: "unix", path });
      await conn.write(new Uint8Array(new Uint32Array([MAGIC, worldSize, rank, 0]).buffer));
      return conn;
    } catch (e) {
      const notYet = e instanceof Deno.errors.NotFound ||
        e instanceof Deno.errors.ConnectionRefused;
      if (!notYet || Date.now() > deadline) throw e;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** Accept rank `prev`'s connection and check its hello. */
export async function acceptPrev(
  listener: Deno.Listener,
  rank: number,
  worldSize: number,
  prev: number,
): Promise<Deno.Conn> {
  const conn = await listener.accept();
  const hello = new Uint32Array(4);
  const buf = new Uint8Array(hello.buffer);
  for (let at = 0; at < buf.length;) {
    const n = await conn.read(buf.subarray(at));
    if (n === null) throw new Error(`rank ${rank}: connection closed during handshake`);
    at += n;
  }
  if (hello[0] !== MAGIC || hello[1] !== worldSize || hello[2] !== prev) {
    conn.close();
    throw new Error(
      `rank ${rank}: expected rank ${prev} of ${worldSize} to connect, got rank ${hello[2]} of ` +
        `${hello[1]} (two jobs sharing a socket folder?)`,
    );
  }
  return conn;
}

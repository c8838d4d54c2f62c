/**
 * TensorBoard event files, written and read without TensorFlow.
 *
 * A file `events.out.tfevents.<secs>.<host>` is a sequence of TFRecords:
 *   u64 LE length | u32 LE masked CRC32C(length bytes) | data | u32 LE masked CRC32C(data)
 * where each data is a serialized `Event` protobuf:
 *   Event { double wall_time = 1; int64 step = 2; string file_version = 3;
 *           Summary summary = 5; SessionLog session_log = 6; }
 *   Summary { repeated Value value = 1; }  Value { string tag = 1; float simple_value = 2; }
 *   SessionLog { enum Status status = 1; }  (START = 1)
 * The first record carries file_version "brain.Event:2". Every scalar is written through to the
 * OS as it is logged (a record is ~50 bytes), so a crash loses nothing already logged and
 * TensorBoard sees new points at once.
 *
 * Resuming: open the writer with `purgeStep` = the first step about to be logged again. It
 * writes a SessionLog START event at that step, on which TensorBoard discards the points at
 * steps >= purgeStep left in older files by the interrupted run (PyTorch's `purge_step`).
 */
import { join } from "node:path";
import { maskedCrc32c } from "./_crc32c.ts";
import { asDouble, asFloat, protoFields, ProtoWriter } from "./_protobuf.ts";

/** One decoded event. */
export interface TbEvent {
  wallTime: number;
  step: number;
  /** Set on the file's first event. */
  fileVersion?: string;
  /** SessionLog status (1 = START) when the event is a session log. */
  sessionStatus?: number;
  /** The event's simple_value scalars (empty for non-summary events). */
  scalars: { tag: string; value: number }[];
}

/** Appends scalar events to a new event file in a log directory. Only rank 0 should write. */
export class TensorBoardWriter {
  #file: Deno.FsFile;

  private constructor(readonly path: string, file: Deno.FsFile) {
    this.#file = file;
  }

  /**
   * Create `logDir` if needed and a new event file in it, holding the file_version event (and
   * a SessionLog START at `purgeStep` when resuming).
   */
  static create(
    logDir: string,
    { purgeStep, wallTime = Date.now() / 1000 }: { purgeStep?: number; wallTime?: number } = {},
  ): TensorBoardWriter {
    Deno.mkdirSync(logDir, { recursive: true });
    const base = join(logDir, `events.out.tfevents.${Math.floor(wallTime)}.${Deno.hostname()}`);
    // Two writers started in the same second (a quick resume) must not share a file.
    let path = base;
    let file: Deno.FsFile | undefined;
    for (let n = 1; !file; n++) {
      try {
        file = Deno.openSync(path, { write: true, createNew: true });
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
        path = `${base}.${n}`;
      }
    }
    const writer = new TensorBoardWriter(path, file);
    writer.#write(encodeEvent({ wallTime, step: 0, fileVersion: "brain.Event:2", scalars: [] }));
    if (purgeStep !== undefined) {
      writer.#write(encodeEvent({ wallTime, step: purgeStep, sessionStatus: 1, scalars: [] }));
    }
    return writer;
  }

  /** Log one scalar, e.g. `scalar("Loss/train", 3.21, 1000)`. */
  scalar(tag: string, value: number, step: number, wallTime: number = Date.now() / 1000): void {
    this.scalars(step, { [tag]: value }, wallTime);
  }

  /** Log several scalars at one step, one event per tag, in one write. */
  scalars(
    step: number,
    values: Record<string, number>,
    wallTime: number = Date.now() / 1000,
  ): void {
    const records = Object.entries(values).map(([tag, value]) =>
      encodeEvent({ wallTime, step, scalars: [{ tag, value }] })
    );
    const all = new Uint8Array(records.reduce((n, r) => n + r.length, 0));
    let at = 0;
    for (const r of records) {
      all.set(r, at);
      at += r.length;
    }
    this.#write(all);
  }

  /** fsync what was written (each record already reached the OS when it was logged). */
  sync(): void {
    this.#file.syncSync();
  }

  close(): void {
    this.#file.close();
  }

  #write(bytes: Uint8Array) {
    for (let done = 0; done < bytes.length;) done += this.#file.writeSync(bytes.subarray(done));
  }
}

/** One TFRecord (length, masked CRCs) holding the serialized Event. */
export function encodeEvent(event: TbEvent): Uint8Array {
  const msg = new ProtoWriter().double(1, event.wallTime);
  if (event.step !== 0) msg.varint(2, event.step);
  if (event.fileVersion !== undefined) msg.bytes(3, event.fileVersion);
  if (event.scalars.length > 0) {
    const summary = new ProtoWriter();
    for (const { tag, value } of event.scalars) {
      summary.bytes(1, new ProtoWriter().bytes(1, tag).float(2, value).finish());
    }
    msg.bytes(5, summary.finish());
  }
  if (event.sessionStatus !== undefined) {
    msg.bytes(6, new ProtoWriter().varint(1, event.sessionStatus).finish());
  }
  const data = msg.finish();
  const record = new Uint8Array(8 + 4 + data.length + 4);
  const view = new DataView(record.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(record.subarray(0, 8)), true);
  record.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return record;
}

/** Read an event file, checking both CRCs of every record; errors name the file and offset. */
export function readEvents(path: string): TbEvent[] {
  const bytes = Deno.readFileSync(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const events: TbEvent[] = [];
  for (let pos = 0; pos < bytes.length;) {
    const fail = (why: string) => new Error(`${path}: record at byte ${pos}: ${why}`);
    if (pos + 12 > bytes.length) throw fail("truncated length");
    if (view.getUint32(pos + 8, true) !== maskedCrc32c(bytes.subarray(pos, pos + 8))) {
      throw fail("length CRC mismatch");
    }
    const len = Number(view.getBigUint64(pos, true));
    if (pos + 12 + len + 4 > bytes.length) throw fail(`truncated data (${len} bytes claimed)`);
    const data = bytes.subarray(pos + 12, pos + 12 + len);
    if (view.getUint32(pos + 12 + len, true) !== maskedCrc32c(data)) {
      throw fail("data CRC mismatch");
    }
    try {
      events.push(decodeEvent(data));
    } catch (e) {
      throw fail((e as Error).message);
    }
    pos += 12 + len + 4;
  }
  return events;
}

function decodeEvent(data: Uint8Array): TbEvent {
  const event: TbEvent = { wallTime: 0, step: 0, scalars: [] };
  for (const f of protoFields(data)) {
    if (f.field === 1) event.wallTime = asDouble(f.bytes);
    else if (f.field === 2) event.step = f.varint;
    else if (f.field === 3) event.fileVersion = new TextDecoder().decode(f.bytes);
    else if (f.field === 5) {
      for (const v of protoFields(f.bytes)) {
        if (v.field !== 1) continue;
        let tag = "", value = NaN;
        for (const g of protoFields(v.bytes)) {
          if (g.field === 1) tag = new TextDecoder().decode(g.bytes);
          else if (g.field === 2) value = asFloat(g.bytes);
        }
        event.scalars.push({ tag, value });
      }
    } else if (f.field === 6) {
      event.sessionStatus = 0;
      for (const g of protoFields(f.bytes)) if (g.field === 1) event.sessionStatus = g.varint;
    }
  }
  return event;
}

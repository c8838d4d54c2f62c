/**
 * The few protobuf wire-format pieces TensorBoard event files need, by hand: varints,
 * fixed64 doubles, fixed32 floats and length-delimited fields, and a field iterator to read
 * them back. Field numbers are the caller's business.
 */

const WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LEN = 2, WIRE_FIXED32 = 5;

/** Builds one message; nested messages are encoded first and added with {@link bytes}. */
export class ProtoWriter {
  #out: number[] = [];

  /** A non-negative integer (int64/enum) as a varint. */
  varint(field: number, value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new Error(`protobuf: varint field ${field} needs a non-negative integer, got ${value}`);
    }
    this.#key(field, WIRE_VARINT);
    this.#rawVarint(value);
    return this;
  }

  double(field: number, value: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, value, true);
    this.#key(field, WIRE_FIXED64);
    this.#out.push(...b);
    return this;
  }

  float(field: number, value: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.#key(field, WIRE_FIXED32);
    this.#out.push(...b);
    return this;
  }

  /** Length-delimited: a string, bytes, or an encoded nested message. */
  bytes(field: number, value: Uint8Array | string): this {
    const b = typeof value === "string" ? new TextEncoder().encode(value) : value;
    this.#key(field, WIRE_LEN);
    this.#rawVarint(b.length);
    for (let i = 0; i < b.length; i++) this.#out.push(b[i]);
    return this;
  }

  finish(): Uint8Array {
    return new Uint8Array(this.#out);
  }

  #key(field: number, wire: number) {
    this.#rawVarint(field * 8 + wire);
  }

  #rawVarint(v: number) {
    // Division instead of shifts: JS bit operators would cut values to 32 bits.
    while (v >= 0x80) {
      this.#out.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.#out.push(v);
  }
}

/** One decoded field: varints as numbers; fixed64/fixed32/length-delimited as raw bytes. */
export interface ProtoField {
  field: number;
  wire: number;
  varint: number;
  bytes: Uint8Array;
}

/** The fields of one message in order; throws on malformed input. */
export function* protoFields(msg: Uint8Array): Generator<ProtoField> {
  let pos = 0;
  const varint = () => {
    let v = 0, scale = 1;
    for (;;) {
      if (pos >= msg.length) throw new Error("protobuf: truncated varint");
      const b = msg[pos++];
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
      scale *= 0x80;
      if (scale > 2 ** 63) throw new Error("protobuf: varint longer than 10 bytes");
    }
  };
  const take = (n: number) => {
    if (pos + n > msg.length) throw new Error("protobuf: field runs past the message end");
    pos += n;
    return msg.subarray(pos - n, pos);
  };
  while (pos < msg.length) {
    const key = varint();
    const field = Math.floor(key / 8), wire = key % 8;
    const empty = new Uint8Array(0);
    if (wire === WIRE_VARINT) yield { field, wire, varint: varint(), bytes: empty };
    else if (wire === WIRE_FIXED64) yield { field, wire, varint: 0, bytes: take(8) };
    else if (wire === WIRE_LEN) yield { field, wire, varint: 0, bytes: take(varint()) };
    else if (wire === WIRE_FIXED32) yield { field, wire, varint: 0, bytes: take(4) };
    else throw new Error(`protobuf: unsupported wire type ${wire} for field ${field}`);
  }
}

/** A fixed64 field's bytes as a little-endian double. */
export function asDouble(b: Uint8Array): number {
  return new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
}

/** A fixed32 field's bytes as a little-endian float. */
export function asFloat(b: Uint8Array): number {
  return new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
}

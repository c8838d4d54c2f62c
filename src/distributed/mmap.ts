/**
 * Files shared between processes as memory: libc's open, ftruncate and mmap(MAP_SHARED) through
 * Deno FFI, each mapping viewed as an ArrayBuffer over the mapped pages. Two processes that map
 * the same file see each other's writes at memory speed. Linux (x86-64 and arm64 flag values).
 *
 * Deno's own file API exposes no descriptors, so files are opened with libc's open and handled
 * by their descriptor numbers, which every thread of the process shares (a Worker may map a
 * descriptor that the main thread opened).
 */

const O_RDWR = 0o2, O_CREAT = 0o100, O_EXCL = 0o200, O_CLOEXEC = 0o2000000;
const PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1, MAP_FIXED = 0x10;
/** Mapping offsets must be page multiples; 64 KiB covers every page size Linux uses. */
export const MAP_ALIGN = 64 << 10;

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const;

let libc: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] | undefined;

function c(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  libc ??= Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  return libc;
}

/** An Error for the failed libc call `what`, with errno's text. */
function failure(what: string): Error {
  const errno = new Deno.UnsafePointerView(c().__errno_location()!).getInt32();
  const text = Deno.UnsafePointerView.getCString(c().strerror(errno)!);
  return new Error(`${what}: ${text} (errno ${errno})`);
}

function cString(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`${s}\0`);
}

/** Creates `path` (it must not exist) with mode 0600 and opens it read-write; returns its fd. */
export function createFile(path: string): number {
  const fd = c().open(cString(path), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600);
  if (fd < 0) throw failure(`cannot create ${path}`);
  return fd;
}

/** Opens the existing `path` read-write; returns its fd. */
export function openFile(path: string): number {
  const fd = c().open(cString(path), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) throw failure(`cannot open ${path}`);
  return fd;
}

/** Sets the size of the open file `fd` (`what` names it in errors). */
export function resizeFile(fd: number, bytes: number, what: string): void {
  if (c().ftruncate(fd, BigInt(bytes)) !== 0) throw failure(`cannot resize ${what} to ${bytes} B`);
}

/** Closes `fd`. */
export function closeFile(fd: number): void {
  c().close(fd);
}

/** A shared mapping of part of a file. */
export interface Mapping {
  /** The mapped bytes; valid until {@link unmap}, which makes any access crash the process. */
  readonly buffer: ArrayBuffer;
  readonly pointer: Deno.PointerObject;
  readonly bytes: number;
}

/**
 * Maps `bytes` of the file `fd` from `offset` (a multiple of {@link MAP_ALIGN}) read-write and
 * shared; the file must already be that long (touching pages past its end raises SIGBUS).
 */
export function mapFile(fd: number, offset: number, bytes: number, what: string): Mapping {
  const length = Math.max(bytes, 1); // mmap refuses 0 bytes
  const p = map(null, fd, offset, length, MAP_SHARED, what);
  return { buffer: Deno.UnsafePointerView.getArrayBuffer(p, length), pointer: p, bytes: length };
}

/**
 * Maps `bytes` of the file `fd` from `offset` over the memory at `address` (MAP_FIXED), which
 * must be ours, writable and {@link MAP_ALIGN}-aligned, e.g. pages of a WebAssembly.Memory: its
 * code then reads and writes the file. The pages stay the file's until the memory is freed.
 */
export function mapFileOver(
  address: Deno.PointerObject,
  fd: number,
  offset: number,
  bytes: number,
  what: string,
): void {
  if (Deno.UnsafePointer.value(address) % BigInt(MAP_ALIGN) !== 0n) {
    throw new RangeError(`cannot map ${what} over an address that is not aligned`);
  }
  map(address, fd, offset, bytes, MAP_SHARED | MAP_FIXED, what);
}

function map(
  address: Deno.PointerObject | null,
  fd: number,
  offset: number,
  bytes: number,
  flags: number,
  what: string,
): Deno.PointerObject {
  if (offset % MAP_ALIGN !== 0) throw new RangeError(`mapping offset ${offset} is not aligned`);
  const prot = PROT_READ | PROT_WRITE;
  const p = c().mmap(address, BigInt(bytes), prot, flags, fd, BigInt(offset));
  if (p === null || Deno.UnsafePointer.value(p) === 0xffffffffffffffffn) {
    throw failure(`cannot map ${bytes} B of ${what} at ${offset}`);
  }
  return p;
}

/** Removes a mapping made by {@link mapFile}; its buffer must not be touched again. */
export function unmap(m: Mapping): void {
  c().munmap(m.pointer, BigInt(m.bytes));
}

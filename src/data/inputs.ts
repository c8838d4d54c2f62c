/**
 * Prepare's inputs, cut into jobs for the tokenizer Workers.
 *
 * Input files: `.txt` (one document per file), `.jsonl` (one JSON object per line, document in
 * its string field `text`; blank lines skipped), `.parquet` (string column `text`, one document
 * per row). Folders are walked recursively in name order, taking files with those extensions.
 *
 * The main thread only reads bytes and cuts them at document boundaries ({@link inputJobs});
 * the Workers do the CPU work, UTF-8 and JSON decoding, Parquet decompression and tokenizing
 * ({@link jobDocuments}). Jobs come out in input order, so documents keep their order.
 */
import { extname, join } from "node:path";
import { parquetMetadataAsync, parquetReadObjects } from "hyparquet";
import type { AsyncBuffer, FileMetaData } from "hyparquet";
import { compressors } from "hyparquet-compressors";

/** Input bytes per job (jsonl chunks, batches of txt files or of in-memory documents). */
export const JOB_BYTES = 256 * 1024;

/** A unit of work for one Worker. `bytes`: input bytes it covers (for progress). */
export type Job =
  | { kind: "texts"; texts: string[]; bytes: number }
  | { kind: "txt"; paths: string[]; data: Uint8Array[]; bytes: number }
  | { kind: "jsonl"; path: string; firstLine: number; data: Uint8Array; bytes: number }
  | { kind: "parquet"; path: string; rowStart: number; rowEnd: number; bytes: number };

const EXTENSIONS = new Set([".txt", ".jsonl", ".parquet"]);

/**
 * Expand `inputs` (files and folders) into the ordered list of input files. A named file must
 * have a known extension; a folder must contain at least one.
 */
export async function expandInputs(inputs: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const input of inputs) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(input);
    } catch (e) {
      throw new Error(`input ${input}: ${(e as Error).message}`);
    }
    if (info.isDirectory) {
      const found = await walk(input);
      if (found.length === 0) {
        throw new Error(`input folder ${input}: no .txt, .jsonl or .parquet files in it`);
      }
      files.push(...found);
    } else if (EXTENSIONS.has(extname(input))) {
      files.push(input);
    } else {
      throw new Error(`input ${input}: unsupported file type (expected .txt, .jsonl or .parquet)`);
    }
  }
  return files;
}

async function walk(dir: string): Promise<string[]> {
  const entries = [];
  for await (const e of Deno.readDir(dir)) entries.push(e);
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const files: string[] = [];
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory) files.push(...await walk(path));
    else if (EXTENSIONS.has(extname(e.name))) files.push(path);
  }
  return files;
}

/** Jobs for in-memory documents (the WordNet corpus), about {@link JOB_BYTES} each. */
export function* textJobs(texts: readonly string[]): Generator<Job> {
  const encoder = new TextEncoder();
  let batch: string[] = [];
  let bytes = 0;
  for (const text of texts) {
    batch.push(text);
    bytes += encoder.encode(text).length;
    if (bytes >= JOB_BYTES) {
      yield { kind: "texts", texts: batch, bytes };
      batch = [];
      bytes = 0;
    }
  }
  if (batch.length > 0) yield { kind: "texts", texts: batch, bytes };
}

/** Jobs for input files, in order, reading only a bounded window of each at a time. */
export async function* fileJobs(files: readonly string[]): AsyncGenerator<Job> {
  let txt: { paths: string[]; data: Uint8Array[]; bytes: number } = {
    paths: [],
    data: [],
    bytes: 0,
  };
  for (const path of files) {
    const ext = extname(path);
    if (ext === ".txt") {
      const data = await Deno.readFile(path);
      txt.paths.push(path);
      txt.data.push(data);
      txt.bytes += data.length;
      if (txt.bytes < JOB_BYTES) continue;
    }
    if (txt.paths.length > 0) {
      yield { kind: "txt", ...txt };
      txt = { paths: [], data: [], bytes: 0 };
    }
    if (ext === ".jsonl") yield* jsonlJobs(path);
    if (ext === ".parquet") yield* parquetJobs(path);
  }
  if (txt.paths.length > 0) yield { kind: "txt", ...txt };
}

/** Cut a jsonl file at line ends into chunks of about {@link JOB_BYTES}. */
async function* jsonlJobs(path: string): AsyncGenerator<Job> {
  using file = await Deno.open(path);
  const chunk = new Uint8Array(JOB_BYTES);
  let carry = new Uint8Array(0);
  let line = 1;
  for (;;) {
    const n = await file.read(chunk);
    if (n === null) break;
    const data = new Uint8Array(carry.length + n);
    data.set(carry);
    data.set(chunk.subarray(0, n), carry.length);
    const cut = data.lastIndexOf(10) + 1;
    if (cut === 0) {
      carry = data; // one line longer than a chunk: keep reading
      continue;
    }
    const firstLine = line;
    for (let i = data.indexOf(10); i >= 0 && i < cut; i = data.indexOf(10, i + 1)) line++;
    // A copy: the Worker takes over its buffer.
    yield { kind: "jsonl", path, firstLine, data: data.slice(0, cut), bytes: cut };
    carry = data.slice(cut);
  }
  if (carry.length > 0) {
    yield { kind: "jsonl", path, firstLine: line, data: carry, bytes: carry.length };
  }
}

/** One job per row group; the Worker reads and decompresses the `text` column itself. */
async function* parquetJobs(path: string): AsyncGenerator<Job> {
  using file = await Deno.open(path);
  const size = (await file.stat()).size;
  const metadata = await readParquetMetadata(path, fileBuffer(file, size));
  const total = Number(metadata.num_rows);
  let rowStart = 0;
  let bytesBefore = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    // Spread the file size over the groups by rows so that the progress ends at 100%.
    const bytesAfter = total > 0 ? Math.round((size * rowEnd) / total) : size;
    yield { kind: "parquet", path, rowStart, rowEnd, bytes: bytesAfter - bytesBefore };
    rowStart = rowEnd;
    bytesBefore = bytesAfter;
  }
}

async function readParquetMetadata(path: string, buffer: AsyncBuffer): Promise<FileMetaData> {
  let metadata: FileMetaData;
  try {
    metadata = await parquetMetadataAsync(buffer);
  } catch (e) {
    throw new Error(`${path}: not a readable Parquet file: ${(e as Error).message}`);
  }
  const text = metadata.schema.find((s, i) => i > 0 && s.name === "text");
  if (!text) {
    const names = metadata.schema.slice(1).map((s) => s.name).join(", ");
    throw new Error(`${path}: no "text" column (columns: ${names})`);
  }
  return metadata;
}

/** hyparquet's random-access view of an open file. */
function fileBuffer(file: Deno.FsFile, size: number): AsyncBuffer {
  return {
    byteLength: size,
    async slice(start: number, end = size): Promise<ArrayBuffer> {
      const out = new Uint8Array(end - start);
      await file.seek(start, Deno.SeekMode.Start);
      for (let done = 0; done < out.length;) {
        const n = await file.read(out.subarray(done));
        if (n === null) throw new Error(`unexpected end of file at byte ${start + done}`);
        done += n;
      }
      return out.buffer;
    },
  };
}

/** Worker side: the documents of a job, in order. Errors name the file (and line or row). */
export async function jobDocuments(job: Job): Promise<string[]> {
  switch (job.kind) {
    case "texts":
      return job.texts;
    case "txt":
      return job.paths.map((path, i) => decodeUtf8(job.data[i], path));
    case "jsonl":
      return jsonlDocuments(job.path, job.firstLine, job.data);
    case "parquet":
      return await parquetDocuments(job.path, job.rowStart, job.rowEnd);
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function decodeUtf8(bytes: Uint8Array, where: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new Error(`${where}: not valid UTF-8`);
  }
}

function jsonlDocuments(path: string, firstLine: number, data: Uint8Array): string[] {
  const docs: string[] = [];
  let start = 0;
  for (let line = firstLine; start < data.length; line++) {
    let end = data.indexOf(10, start);
    if (end < 0) end = data.length;
    const where = `${path}:${line}`;
    const text = decodeUtf8(data.subarray(start, end), where);
    start = end + 1;
    if (text.trim() === "") continue;
    let record: unknown;
    try {
      record = JSON.parse(text);
    } catch (e) {
      throw new Error(`${where}: invalid JSON: ${(e as Error).message}`);
    }
    const doc = (record as { text?: unknown } | null)?.text;
    if (typeof doc !== "string") {
      throw new Error(`${where}: expected an object with a string field "text"`);
    }
    docs.push(doc);
  }
  return docs;
}

/** The last Parquet file opened by this Worker (row groups of one file come in a run). */
let openParquet:
  | { path: string; file: Deno.FsFile; buffer: AsyncBuffer; meta: FileMetaData }
  | null = null;

async function parquetDocuments(path: string, rowStart: number, rowEnd: number): Promise<string[]> {
  if (openParquet?.path !== path) {
    openParquet?.file.close();
    openParquet = null;
    const file = await Deno.open(path);
    const buffer = fileBuffer(file, (await file.stat()).size);
    openParquet = { path, file, buffer, meta: await readParquetMetadata(path, buffer) };
  }
  const { buffer, meta } = openParquet;
  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({
      file: buffer,
      metadata: meta,
      columns: ["text"],
      rowStart,
      rowEnd,
      compressors,
    });
  } catch (e) {
    throw new Error(`${path}: rows ${rowStart}..${rowEnd}: ${(e as Error).message}`);
  }
  return rows.map((row, i) => {
    const text = row.text;
    if (typeof text === "string") return text;
    // A BYTE_ARRAY column without the UTF8 annotation comes back as bytes.
    if (text instanceof Uint8Array) return decodeUtf8(text, `${path}: row ${rowStart + i}`);
    throw new Error(
      `${path}: row ${rowStart + i}: "text" is ${
        text === null ? "null" : typeof text
      }, not a string`,
    );
  });
}

// The snapshot format of a WASM instance: a checksummed header, then the pages of linear memory that
// differ from the module's initial image, each at a fixed (offset, length), so a child can pull them
// all, only some, or one at a time when it needs them.
//
//  offset  field (little-endian)
//   0      magic "FXHSNAP\0"
//   8      u32 format version
//  12      u32 header bytes H (= offset of the first page)
//  16      u8[32] sha256 of the module's bytes as instantiated
//  48      u32 page size P (bytes; a power of two from 4096 to 65536)
//  52      u32 memory size in 64 KiB WASM pages
//  56      u32 page count N
//  60      u32 global count G
//  64      u32 meta bytes M
//  68      u32 reserved (0)
//  72      G × { u32 global index, u8 type (0x7f i32, 0x7e i64, 0x7d f32, 0x7c f64), u8[3] 0, u64 value bits }
//   …      N × { u32 page index (memory offset / P), u32 0, i64 the page's fxh64 checksum (page-checksum.ts) }
//   …      M bytes of JSON (meta: WASI state, tables, provenance), zero-padded to a multiple of 8
//  H-32    sha256 of bytes [0, H-32): the header checksum, which covers every page checksum
// Version 2 replaced version 1's page checksums (the first 8 bytes of a sha256) with fxh64: a child
// checks every page before its instance runs, and sha256 per page cost more than the transfer.
//   H      page k's bytes at H + k·P, k = 0 … N-1; the snapshot is H + N·P bytes long
import { createHash } from 'node:crypto';
import { GLOBAL_TYPE_CODE, type GlobalType } from './module-globals.js';
import { PAGE_CHECKSUM, sumPages, summer } from './page-checksum.js';

export const SNAPSHOT_MAGIC = Buffer.from('FXHSNAP\0', 'latin1');
export const SNAPSHOT_VERSION = 2;
const FIXED = 72;
const GLOBAL_ENTRY = 16;
const PAGE_ENTRY = 16;

export class SnapshotError extends Error {
  override name = 'SnapshotError';
}

export interface SnapshotGlobal {
  index: number;
  type: GlobalType;
  value: number | bigint;
}

export interface SnapshotMeta {
  /** the function's name, for messages */
  module: string;
  /** calls the instance had served when it was taken (0: right after initialisation) */
  calls: number;
  wasi: { args: string[]; env: Record<string, string>; fds: { fd: number; kind: string }[] };
  /** per table the module defines: its length and each entry's function index (null: empty) */
  tables: { length: number; entries: (number | null)[] }[];
  /** pages (k = index in the page list) the first call after a fork touched, as runs [k, count, k, count, …] */
  workingSet?: number[];
}

export interface Snapshot {
  version: number;
  /** hex */
  moduleSha256: string;
  pageSize: number;
  memoryBytes: number;
  globals: SnapshotGlobal[];
  /** memory page indices (offset / pageSize), increasing */
  pages: Uint32Array;
  /** the pages' bytes, page k at k · pageSize */
  data: Uint8Array;
  meta: SnapshotMeta;
}

/** Where page k of an encoded snapshot lies: a child that pulls byte ranges needs only this and the header. */
export function pageRange(headerBytes: number, pageSize: number, k: number): { offset: number; length: number } {
  return { offset: headerBytes + k * pageSize, length: pageSize };
}

const sha = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();
const TYPE_OF: Record<number, GlobalType> = Object.fromEntries(Object.entries(GLOBAL_TYPE_CODE).map(([k, v]) => [v, k as GlobalType]));

export function headerBytesOf(s: Pick<Snapshot, 'globals' | 'pages'>, metaLength: number): number {
  return FIXED + s.globals.length * GLOBAL_ENTRY + s.pages.length * PAGE_ENTRY + Math.ceil(metaLength / 8) * 8 + 32;
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  if (s.data.length !== s.pages.length * s.pageSize) throw new SnapshotError(`internal: ${s.data.length} data bytes for ${s.pages.length} pages of ${s.pageSize}`);
  const meta = Buffer.from(JSON.stringify(s.meta));
  const H = headerBytesOf(s, meta.length);
  const out = Buffer.alloc(H + s.data.length);
  SNAPSHOT_MAGIC.copy(out, 0);
  out.writeUInt32LE(s.version, 8);
  out.writeUInt32LE(H, 12);
  Buffer.from(s.moduleSha256, 'hex').copy(out, 16);
  out.writeUInt32LE(s.pageSize, 48);
  out.writeUInt32LE(s.memoryBytes / 65536, 52);
  out.writeUInt32LE(s.pages.length, 56);
  out.writeUInt32LE(s.globals.length, 60);
  out.writeUInt32LE(meta.length, 64);
  const sums = sumPages(s.data, s.pageSize);
  let o = FIXED;
  for (const g of s.globals) {
    out.writeUInt32LE(g.index, o);
    out.writeUInt8(GLOBAL_TYPE_CODE[g.type], o + 4);
    writeValue(out, o + 8, g);
    o += GLOBAL_ENTRY;
  }
  for (let k = 0; k < s.pages.length; k++) {
    out.writeUInt32LE(s.pages[k]!, o);
    out.writeBigInt64LE(sums[k]!, o + 8);
    o += PAGE_ENTRY;
  }
  meta.copy(out, o);
  sha(out.subarray(0, H - 32)).copy(out, H - 32);
  out.set(s.data, H);
  return out;
}

function writeValue(out: Buffer, o: number, g: SnapshotGlobal): void {
  if (g.type === 'i32') out.writeUInt32LE(Number(g.value) >>> 0, o);
  else if (g.type === 'i64') out.writeBigInt64LE(BigInt.asIntN(64, BigInt(g.value)), o);
  else if (g.type === 'f32') out.writeFloatLE(Number(g.value), o);
  else out.writeDoubleLE(Number(g.value), o);
}

function readValue(b: Buffer, o: number, type: GlobalType): number | bigint {
  if (type === 'i32') return b.readInt32LE(o);
  if (type === 'i64') return b.readBigInt64LE(o);
  if (type === 'f32') return b.readFloatLE(o);
  return b.readDoubleLE(o);
}

/** The header alone (what a child reads first); throws SnapshotError naming what failed. */
export function decodeHeader(bytes: Uint8Array): Omit<Snapshot, 'data'> & { headerBytes: number; pageDigests: BigInt64Array } {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 12) throw new SnapshotError(`snapshot truncated: ${b.length} bytes, less than magic and version; the header checksum (sha256) cannot be checked`);
  if (!b.subarray(0, 8).equals(SNAPSHOT_MAGIC)) throw new SnapshotError('not a snapshot: the magic number is not "FXHSNAP\\0"');
  const version = b.readUInt32LE(8);
  if (version > SNAPSHOT_VERSION) throw new SnapshotError(`snapshot format version ${version} is newer than this reader's version ${SNAPSHOT_VERSION}`);
  if (version < SNAPSHOT_VERSION) throw new SnapshotError(`snapshot format version ${version} is older than this reader's version ${SNAPSHOT_VERSION} (its page checksums are not ${PAGE_CHECKSUM}): take the snapshot again`);
  if (b.length < FIXED) throw new SnapshotError(`snapshot truncated: ${b.length} bytes, shorter than the ${FIXED}-byte fixed header; header checksum (sha256) fails`);
  const H = b.readUInt32LE(12);
  if (b.length < H) throw new SnapshotError(`snapshot truncated: ${b.length} of ${H} header bytes; header checksum (sha256) fails`);
  if (H < FIXED + 32 || !sha(b.subarray(0, H - 32)).equals(b.subarray(H - 32, H))) throw new SnapshotError('snapshot corrupted: header checksum (sha256) mismatch');
  const pageSize = b.readUInt32LE(48);
  const memoryBytes = b.readUInt32LE(52) * 65536;
  const n = b.readUInt32LE(56);
  const G = b.readUInt32LE(60);
  const M = b.readUInt32LE(64);
  if (pageSize < 4096 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) throw new SnapshotError(`snapshot: page size ${pageSize} is not a power of two from 4096 to 65536`);
  if (H !== FIXED + G * GLOBAL_ENTRY + n * PAGE_ENTRY + Math.ceil(M / 8) * 8 + 32) throw new SnapshotError('snapshot: header length disagrees with its counts');
  const globals: SnapshotGlobal[] = [];
  let o = FIXED;
  for (let i = 0; i < G; i++, o += GLOBAL_ENTRY) {
    const type = TYPE_OF[b.readUInt8(o + 4)];
    if (!type) throw new SnapshotError(`snapshot: global entry ${i} has an unknown type 0x${b.readUInt8(o + 4).toString(16)}`);
    globals.push({ index: b.readUInt32LE(o), type, value: readValue(b, o + 8, type) });
  }
  const { pages, pageDigests } = pageEntries(b.subarray(o, o + n * PAGE_ENTRY), n);
  for (let k = 0; k < n; k++) {
    if ((k > 0 && pages[k]! <= pages[k - 1]!) || (pages[k]! + 1) * pageSize > memoryBytes) throw new SnapshotError(`snapshot: page entry ${k} (index ${pages[k]}) is out of order or past the memory`);
  }
  o += n * PAGE_ENTRY;
  const meta = JSON.parse(b.toString('utf8', o, o + M)) as SnapshotMeta;
  return { version, moduleSha256: b.toString('hex', 16, 48), pageSize, memoryBytes, globals, pages, meta, headerBytes: H, pageDigests };
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The page entries (u32 index, 4 bytes unused, i64 checksum; little-endian) copied out at once: on the fork's
 *  critical path, a readBigInt64LE per page cost ~0.15 µs each, a typed-array copy a few ns. */
function pageEntries(raw: Buffer, n: number): { pages: Uint32Array; pageDigests: BigInt64Array } {
  const pages = new Uint32Array(n);
  const pageDigests = new BigInt64Array(n);
  if (!LITTLE_ENDIAN) {
    for (let k = 0; k < n; k++) {
      pages[k] = raw.readUInt32LE(k * PAGE_ENTRY);
      pageDigests[k] = raw.readBigInt64LE(k * PAGE_ENTRY + 8);
    }
    return { pages, pageDigests };
  }
  const aligned = new BigInt64Array(n * 2);
  new Uint8Array(aligned.buffer).set(raw);
  const words = new Uint32Array(aligned.buffer);
  for (let k = 0; k < n; k++) {
    pages[k] = words[4 * k]!;
    pageDigests[k] = aligned[2 * k + 1]!;
  }
  return { pages, pageDigests };
}

type PageTable = { pages: Uint32Array; pageDigests: BigInt64Array; pageSize: number };

function pageCorrupted(h: PageTable, k: number): SnapshotError {
  return new SnapshotError(`snapshot corrupted: checksum (${PAGE_CHECKSUM}) of page ${k} (memory offset 0x${(h.pages[k]! * h.pageSize).toString(16)}) mismatch`);
}

/** Checks page k's bytes against its checksum in the header (for pages outside an instance's memory). */
export function checkPage(header: PageTable, k: number, bytes: Uint8Array): void {
  if (bytes.length !== header.pageSize || sumPages(bytes, header.pageSize)[0] !== header.pageDigests[k]) throw pageCorrupted(header, k);
}

/** Checks page k where it was written: at its own offset of an instance's memory (no copy). */
export function checkPageInMemory(header: PageTable, k: number, memory: WebAssembly.Memory): void {
  if (summer(memory)(header.pages[k]! * header.pageSize, header.pageSize) !== header.pageDigests[k]) throw pageCorrupted(header, k);
}

/** A whole encoded snapshot: header and every page checked. The pages are a view of `bytes`, not a copy. */
export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  const h = decodeHeader(bytes);
  const total = h.headerBytes + h.pages.length * h.pageSize;
  if (bytes.length < total) {
    const k = Math.floor((bytes.length - h.headerBytes) / h.pageSize);
    throw new SnapshotError(`snapshot truncated: ${bytes.length} of ${total} bytes; checksum (${PAGE_CHECKSUM}) of page ${k} and the ${h.pages.length - k - 1} after it fail`);
  }
  if (bytes.length > total) throw new SnapshotError(`snapshot has ${bytes.length - total} bytes after its last page`);
  const data = bytes.subarray(h.headerBytes, total);
  const sums = sumPages(data, h.pageSize);
  for (let k = 0; k < h.pages.length; k++) if (sums[k] !== h.pageDigests[k]) throw pageCorrupted(h, k);
  const { headerBytes: _h, pageDigests: _d, ...rest } = h;
  return { ...rest, data };
}

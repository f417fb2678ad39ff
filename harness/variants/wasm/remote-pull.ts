// The child's side of a remote fork of a WASM instance: pull the parent's snapshot over a RegionReader
// (a Link's one-sided reads) into a fresh instance. eager pulls the whole memory image, dirty the
// snapshot's pages, prefetch the recorded working set first (the rest is left to `rest`, after the
// call). Every page is checked against the header's checksums (eager: the pages not in the snapshot
// against the initial image) before the instance runs.
import type { RegionReader, SnapshotDescriptor } from '../../platform/remote-fork.js';
import type { Live } from './engine.js';
import { checkRestorable, type ForkImage } from './snapshot.js';
import { SnapshotError, checkPage, decodeHeader, type Snapshot } from './snapshot-format.js';
import { fromRuns } from './working-set.js';

/** bytes per read, and reads in flight: a window keeps the child's buffering bounded */
export const PULL_CHUNK = 256 << 10;
export const PULL_WINDOW = 16;

type Header = ReturnType<typeof decodeHeader>;

export interface Pulled {
  child: Live;
  header: Header;
  /** bytes read so far */
  bytes: number;
  /** prefetch: pulls the pages left out, into the child; resolves with the bytes */
  rest: (() => Promise<number>) | null;
}

/** [offset, end) ranges cut into reads of at most PULL_CHUNK bytes */
function chunks(ranges: readonly [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (const [a, b] of ranges) for (let o = a; o < b; o += PULL_CHUNK) out.push([o, Math.min(b, o + PULL_CHUNK)]);
  return out;
}

/** Reads the ranges of `region`, PULL_WINDOW reads in flight; `onChunk` gets each read at its offset. */
export async function pullRanges(read: RegionReader, region: string, ranges: readonly [number, number][], onChunk: (offset: number, bytes: Uint8Array) => void): Promise<number> {
  const todo = chunks(ranges);
  let next = 0;
  let moved = 0;
  const worker = async () => {
    while (next < todo.length) {
      const [o, e] = todo[next++]!;
      const b = await read(region, o, e - o);
      if (b.length !== e - o) throw new SnapshotError(`snapshot truncated: a read of [${o}, ${e}) of region "${region}" returned ${b.length} bytes`);
      onChunk(o, b);
      moved += b.length;
    }
  };
  await Promise.all(Array.from({ length: Math.min(PULL_WINDOW, todo.length) }, worker));
  return moved;
}

/** The snapshot's header, checked, and its agreement with the descriptor. */
export async function pullHeader(read: RegionReader, d: SnapshotDescriptor): Promise<Header> {
  const h = decodeHeader(await read(d.region, 0, d.headerBytes));
  const total = h.headerBytes + h.pages.length * h.pageSize;
  if (d.totalBytes < total) {
    const k = Math.max(0, Math.floor((d.totalBytes - h.headerBytes) / h.pageSize));
    throw new SnapshotError(`snapshot truncated: region "${d.region}" holds ${d.totalBytes} of ${total} bytes; checksum (sha256) of page ${k} and the ${h.pages.length - k - 1} after it fail`);
  }
  if (d.totalBytes > total) throw new SnapshotError(`snapshot region "${d.region}" has ${d.totalBytes - total} bytes after its last page`);
  return h;
}

function restoreGlobals(img: ForkImage, h: Header, child: Live): void {
  for (let i = 0; i < h.globals.length; i++) (child.instance.exports[img.globals[i]!.exportName] as WebAssembly.Global).value = h.globals[i]!.value;
}

/** pages k of the snapshot, pulled in runs of consecutive k, checked and written into `mem` */
function pullPages(read: RegionReader, region: string, h: Header, ks: readonly number[], mem: Uint8Array): Promise<number> {
  const P = h.pageSize;
  const ranges: [number, number][] = [];
  for (let i = 0; i < ks.length; ) {
    let j = i + 1;
    while (j < ks.length && ks[j] === ks[j - 1]! + 1) j++;
    ranges.push([h.headerBytes + ks[i]! * P, h.headerBytes + ks[j - 1]! * P + P]);
    i = j;
  }
  return pullRanges(read, region, ranges, (o, b) => {
    for (let x = 0; x < b.length; x += P) {
      const k = (o - h.headerBytes + x) / P;
      const page = b.subarray(x, x + P);
      checkPage(h, k, page);
      mem.set(page, h.pages[k]! * P);
    }
  });
}

export async function pullFork(img: ForkImage, d: SnapshotDescriptor, copy: 'eager' | 'dirty' | 'prefetch', read: RegionReader, target: (memoryBytes: number, args: string[]) => Live): Promise<Pulled> {
  const h = await pullHeader(read, d);
  // the module hash, globals, tables, WASI state: refused before a page moves
  checkRestorable(img, { ...h, data: new Uint8Array(0) } as Snapshot);
  let bytes = d.headerBytes;
  const child = target(h.memoryBytes, h.meta.wasi.args);
  const mem = new Uint8Array(child.memory.buffer);
  if (mem.length !== h.memoryBytes) throw new SnapshotError(`internal: target memory ${mem.length} bytes, snapshot ${h.memoryBytes}`);
  let rest: Pulled['rest'] = null;
  if (copy === 'eager') {
    if (d.imageBytes !== h.memoryBytes) throw new SnapshotError(`snapshot image region "${d.imageRegion}" holds ${d.imageBytes} bytes, the header's memory ${h.memoryBytes}`);
    bytes += await pullRanges(read, d.imageRegion, [[0, d.imageBytes]], (o, b) => mem.set(b, o));
    checkImage(img, h, mem);
  } else {
    const all = [...h.pages.keys()];
    const ws = copy === 'prefetch' ? fromRuns(h.meta.workingSet ?? toAll(h.pages.length), h.pages.length) : all;
    bytes += await pullPages(read, d.region, h, ws, mem);
    if (copy === 'prefetch' && ws.length < all.length) {
      const inWs = new Set(ws);
      const left = all.filter((k) => !inWs.has(k));
      rest = () => pullPages(read, d.region, h, left, mem);
    }
  }
  restoreGlobals(img, h, child);
  return { child, header: h, bytes, rest };
}

const toAll = (n: number) => (n ? [0, n] : []);

/** eager: the snapshot's pages match their checksums, every other page the initial image (or zeroes) */
function checkImage(img: ForkImage, h: Header, mem: Uint8Array): void {
  const P = h.pageSize;
  const m = Buffer.from(mem.buffer, mem.byteOffset, mem.byteLength);
  const init = Buffer.from(img.initial.buffer, img.initial.byteOffset, img.initial.byteLength);
  const zero = Buffer.alloc(P);
  let k = 0;
  for (let i = 0, o = 0; o < m.length; i++, o += P) {
    const page = m.subarray(o, o + P);
    if (k < h.pages.length && h.pages[k] === i) {
      checkPage(h, k++, page);
    } else if (!page.equals(o < init.length ? init.subarray(o, o + P) : zero)) {
      throw new SnapshotError(`snapshot image corrupted: page at memory offset 0x${o.toString(16)} is not in the snapshot yet differs from the module's initial image`);
    }
  }
}

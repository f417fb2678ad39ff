// The child's side of a remote fork of a WASM instance: pull the parent's snapshot over a RegionReader
// (a Link's one-sided reads) into a fresh instance. eager pulls the whole memory image, dirty the
// snapshot's pages, prefetch the recorded working set first (the rest is left to `rest`, after the
// call). Every page is checked against the header's checksums where it was written in the instance's
// memory (eager: the pages not in the snapshot against the initial image) before the instance runs.
// eager and dirty ask for the pages together with the header (their ranges are in the descriptor), so
// the pull costs one round trip, not two; bytes that arrive before the header is checked wait for it.
import type { RegionReader, SnapshotDescriptor } from '../../platform/remote-fork.js';
import type { Live } from './engine.js';
import { checkRestorable, type ForkImage } from './snapshot.js';
import { PAGE_CHECKSUM } from './page-checksum.js';
import { SnapshotError, checkPageInMemory, decodeHeader, type Snapshot } from './snapshot-format.js';
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
  /** ns per step: header (read and check), target (the instance to fill), pages (read, check, write), globals */
  phasesNs: Record<string, number>;
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
    throw new SnapshotError(`snapshot truncated: region "${d.region}" holds ${d.totalBytes} of ${total} bytes; checksum (${PAGE_CHECKSUM}) of page ${k} and the ${h.pages.length - k - 1} after it fail`);
  }
  if (d.totalBytes > total) throw new SnapshotError(`snapshot region "${d.region}" has ${d.totalBytes - total} bytes after its last page`);
  return h;
}

function restoreGlobals(img: ForkImage, h: Header, child: Live): void {
  for (let i = 0; i < h.globals.length; i++) (child.instance.exports[img.globals[i]!.exportName] as WebAssembly.Global).value = h.globals[i]!.value;
}

/** [offset, end) ranges of the region holding pages k of the snapshot, consecutive k in one range */
function pageRanges(h: Header, ks: readonly number[]): [number, number][] {
  const P = h.pageSize;
  const ranges: [number, number][] = [];
  for (let i = 0; i < ks.length; ) {
    let j = i + 1;
    while (j < ks.length && ks[j] === ks[j - 1]! + 1) j++;
    ranges.push([h.headerBytes + ks[i]! * P, h.headerBytes + ks[j - 1]! * P + P]);
    i = j;
  }
  return ranges;
}

/** writes the snapshot pages in a read at region offset `o` into the child's memory, each checked where it lands */
function pagesInto(h: Header, child: Live): (o: number, b: Uint8Array) => void {
  const P = h.pageSize;
  const mem = new Uint8Array(child.memory.buffer);
  return (o, b) => {
    for (let x = 0; x < b.length; x += P) {
      const k = (o - h.headerBytes + x) / P;
      mem.set(b.subarray(x, x + P), h.pages[k]! * P);
      checkPageInMemory(h, k, child.memory);
    }
  };
}

/** Reads `ranges` now; what arrives before `open` is called waits, then goes to its sink in order of arrival. */
function early(read: RegionReader, region: string, ranges: readonly [number, number][]) {
  const held: [number, Uint8Array][] = [];
  let sink: ((o: number, b: Uint8Array) => void) | null = null;
  const done = pullRanges(read, region, ranges, (o, b) => (sink ? sink(o, b) : held.push([o, b])));
  done.catch(() => {}); // awaited once the header is good; a bad header is the error then
  return {
    open(to: (o: number, b: Uint8Array) => void): Promise<number> {
      for (const [o, b] of held.splice(0)) to(o, b);
      sink = to;
      return done;
    },
  };
}

export async function pullFork(img: ForkImage, d: SnapshotDescriptor, copy: 'eager' | 'dirty' | 'prefetch', read: RegionReader, target: (memoryBytes: number, args: string[]) => Live): Promise<Pulled> {
  const t0 = process.hrtime.bigint();
  // the header's read goes out first, so it does not queue behind the pages on the link
  const header = pullHeader(read, d);
  const pages = copy === 'eager' ? early(read, d.imageRegion, [[0, d.imageBytes]]) : copy === 'dirty' && d.totalBytes > d.headerBytes ? early(read, d.region, [[d.headerBytes, d.totalBytes]]) : null;
  const h = await header;
  // the module hash, globals, tables, WASI state: refused before a page is written
  checkRestorable(img, { ...h, data: new Uint8Array(0) } as Snapshot);
  // the pages were asked for where the descriptor says they start
  if (d.headerBytes !== h.headerBytes) throw new SnapshotError(`snapshot region "${d.region}": the descriptor gives a header of ${d.headerBytes} bytes, the header itself ${h.headerBytes}`);
  if (copy === 'eager' && d.imageBytes !== h.memoryBytes) throw new SnapshotError(`snapshot image region "${d.imageRegion}" holds ${d.imageBytes} bytes, the header's memory ${h.memoryBytes}`);
  let bytes = d.headerBytes;
  const t1 = process.hrtime.bigint();
  const child = target(h.memoryBytes, h.meta.wasi.args);
  const t2 = process.hrtime.bigint();
  const mem = new Uint8Array(child.memory.buffer);
  if (mem.length !== h.memoryBytes) throw new SnapshotError(`internal: target memory ${mem.length} bytes, snapshot ${h.memoryBytes}`);
  let rest: Pulled['rest'] = null;
  if (copy === 'eager') {
    bytes += await pages!.open((o, b) => mem.set(b, o));
    checkImage(img, h, child);
  } else if (copy === 'dirty') {
    if (pages) bytes += await pages.open(pagesInto(h, child));
  } else {
    const all = [...h.pages.keys()];
    const ws = fromRuns(h.meta.workingSet ?? toAll(h.pages.length), h.pages.length);
    bytes += await pullRanges(read, d.region, pageRanges(h, ws), pagesInto(h, child));
    if (ws.length < all.length) {
      const inWs = new Set(ws);
      const left = all.filter((k) => !inWs.has(k));
      rest = () => pullRanges(read, d.region, pageRanges(h, left), pagesInto(h, child));
    }
  }
  const t3 = process.hrtime.bigint();
  restoreGlobals(img, h, child);
  const t4 = process.hrtime.bigint();
  return { child, header: h, bytes, rest, phasesNs: { header: Number(t1 - t0), target: Number(t2 - t1), pages: Number(t3 - t2), globals: Number(t4 - t3) } };
}

const toAll = (n: number) => (n ? [0, n] : []);

/** eager: the snapshot's pages match their checksums, every other page the initial image (or zeroes) */
function checkImage(img: ForkImage, h: Header, child: Live): void {
  const P = h.pageSize;
  const mem = child.memory.buffer;
  const m = Buffer.from(mem, 0, mem.byteLength);
  const init = Buffer.from(img.initial.buffer, img.initial.byteOffset, img.initial.byteLength);
  const zero = Buffer.alloc(P);
  let k = 0;
  for (let i = 0, o = 0; o < m.length; i++, o += P) {
    if (k < h.pages.length && h.pages[k] === i) {
      checkPageInMemory(h, k++, child.memory);
    } else if (!m.subarray(o, o + P).equals(o < init.length ? init.subarray(o, o + P) : zero)) {
      throw new SnapshotError(`snapshot image corrupted: page at memory offset 0x${o.toString(16)} is not in the snapshot yet differs from the module's initial image`);
    }
  }
}

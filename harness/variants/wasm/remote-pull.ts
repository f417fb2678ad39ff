// The child's side of a remote fork of a WASM instance: pull the parent's snapshot over a RegionSource
// (a Link's one-sided reads) into a fresh instance. eager pulls the whole memory image, dirty the
// snapshot's pages, prefetch the recorded working set first (the rest is left to `rest`, after the
// call). The reads are streamed: their bytes go from the socket's chunks straight to where they belong
// in the instance's memory, and each page is checked against the header's checksum as soon as it is
// whole there (eager: the pages not in the snapshot against the initial image, at the end), so checking
// overlaps the transfer. eager and dirty ask for the pages together with the header (their ranges are
// in the descriptor), and so does prefetch for the working set when the descriptor names its ranges, so
// the pull costs one round trip, not two; the header is decoded and checked before the first page byte
// is written, in the stream's order.
import type { RegionPiece, RegionSource, SnapshotDescriptor } from '../../platform/remote-fork.js';
import { sinkInto, type PayloadSink } from '../../platform/frame-stream.js';
import type { Live } from './engine.js';
import { checkRestorable, setGlobals, type ForkImage } from './snapshot.js';
import { PAGE_CHECKSUM } from './page-checksum.js';
import { SnapshotError, checkPageInMemory, decodeHeader, type Snapshot } from './snapshot-format.js';
import { fromRuns, toRuns } from './working-set.js';

/** bytes per read, and reads in flight: a window keeps what the parent queues per child bounded */
export const PULL_CHUNK = 4 << 20;
export const PULL_WINDOW = 16;

type Header = ReturnType<typeof decodeHeader>;

export interface Pulled {
  child: Live;
  header: Header;
  /** bytes read so far */
  bytes: number;
  /** prefetch: pulls the pages left out, into the child; resolves with the bytes */
  rest: (() => Promise<number>) | null;
  /** ns per step: header (until decoded and checked), target (the instance to fill), pages (read, write, check), globals */
  phasesNs: Record<string, number>;
}

/** [offset, end) ranges cut into reads of at most PULL_CHUNK bytes */
function chunks(ranges: readonly (readonly [number, number])[]): [number, number][] {
  const out: [number, number][] = [];
  for (const [a, b] of ranges) for (let o = a; o < b; o += PULL_CHUNK) out.push([o, Math.min(b, o + PULL_CHUNK)]);
  return out;
}

/** The page ranges a pull asks for with the header (eager, dirty; prefetch's working set when the descriptor names it), or null. */
function earlyRanges(d: SnapshotDescriptor, copy: string): { region: string; ranges: readonly [number, number][]; image: boolean } | null {
  if (copy === 'eager') return { region: d.imageRegion, ranges: [[0, d.imageBytes]], image: true };
  if (copy === 'dirty') return d.totalBytes > d.headerBytes ? { region: d.region, ranges: [[d.headerBytes, d.totalBytes]], image: false } : null;
  if (copy === 'prefetch' && d.workingSetRanges?.length) return { region: d.region, ranges: d.workingSetRanges, image: false };
  return null;
}

/** The reads pullFork makes before the child's call, in the order it makes them: the header, then the early ranges' chunks. A parent that pushes sends exactly these. */
export function pullPlan(d: SnapshotDescriptor, copy: string): RegionPiece[] {
  const early = earlyRanges(d, copy);
  return [{ region: d.region, offset: 0, length: d.headerBytes }, ...(early ? chunks(early.ranges).map(([o, e]) => ({ region: early.region, offset: o, length: e - o })) : [])];
}

/** Streams the ranges of `region`, PULL_WINDOW reads in flight; a read at region offset o hands its bytes to `to(o)`. Resolves with the bytes read. */
async function streamRanges(src: RegionSource, region: string, ranges: readonly [number, number][], to: (offset: number) => PayloadSink): Promise<number> {
  const todo = chunks(ranges);
  let next = 0;
  let moved = 0;
  const worker = async () => {
    while (next < todo.length) {
      const [o, e] = todo[next++]!;
      await src.stream(region, o, e - o, to(o));
      moved += e - o;
    }
  };
  await Promise.all(Array.from({ length: Math.min(PULL_WINDOW, todo.length) }, worker));
  return moved;
}

/** The snapshot's header, checked, and its agreement with the descriptor. */
function checkHeader(bytes: Uint8Array, d: SnapshotDescriptor): Header {
  const h = decodeHeader(bytes);
  agrees(h, d);
  return h;
}

/** The header agrees with the descriptor the pages were asked for by. */
function agrees(h: Header, d: SnapshotDescriptor): void {
  const total = h.headerBytes + h.pages.length * h.pageSize;
  if (d.totalBytes < total) {
    const k = Math.max(0, Math.floor((d.totalBytes - h.headerBytes) / h.pageSize));
    throw new SnapshotError(`snapshot truncated: region "${d.region}" holds ${d.totalBytes} of ${total} bytes; checksum (${PAGE_CHECKSUM}) of page ${k} and the ${h.pages.length - k - 1} after it fail`);
  }
  if (d.totalBytes > total) throw new SnapshotError(`snapshot region "${d.region}" has ${d.totalBytes - total} bytes after its last page`);
  // the pages were asked for where the descriptor says they start
  if (d.headerBytes !== h.headerBytes) throw new SnapshotError(`snapshot region "${d.region}": the descriptor gives a header of ${d.headerBytes} bytes, the header itself ${h.headerBytes}`);
  if (d.workingSetRanges) pagesIn(d.workingSetRanges, h, d.region);
}

/** the snapshot pages k the region byte ranges hold; refused unless they are whole pages, in order */
function pagesIn(ranges: readonly [number, number][], h: Header, region: string): number[] {
  const P = h.pageSize;
  const ks: number[] = [];
  for (const [a, b] of ranges) {
    if (!(a >= h.headerBytes && b > a && b <= h.headerBytes + h.pages.length * P && (a - h.headerBytes) % P === 0 && (b - h.headerBytes) % P === 0 && (!ks.length || (a - h.headerBytes) / P > ks[ks.length - 1]!))) {
      throw new SnapshotError(`snapshot region "${region}": the descriptor's working set range [${a}, ${b}) is not whole pages of the snapshot, in order`);
    }
    for (let o = a; o < b; o += P) ks.push((o - h.headerBytes) / P);
  }
  return ks;
}

/**
 * The last header a child decoded and found restorable, by its exact bytes: the next fork of the same
 * snapshot reads the header again, and a byte-identical one is not decoded and checked again (its
 * sha256, page table and restorability are what they were). Any other header is decoded in full.
 */
export class HeaderCache {
  private last: { bytes: Uint8Array; img: ForkImage; header: Header } | null = null;

  get(bytes: Uint8Array, img: ForkImage): Header | null {
    const l = this.last;
    return l && l.img === img && Buffer.from(l.bytes.buffer, l.bytes.byteOffset, l.bytes.byteLength).equals(bytes) ? l.header : null;
  }

  set(bytes: Uint8Array, img: ForkImage, header: Header): void {
    this.last = { bytes, img, header };
  }
}

/** [offset, end) ranges of the snapshot's region holding its pages ks (ascending), a run of consecutive pages in one range (the pages follow the header) */
export function pageRanges(ks: readonly number[], headerBytes: number, pageSize: number): [number, number][] {
  const runs = toRuns(ks);
  return Array.from({ length: runs.length / 2 }, (_, i) => [headerBytes + runs[2 * i]! * pageSize, headerBytes + (runs[2 * i]! + runs[2 * i + 1]!) * pageSize]);
}

/** The target instance, made once the header is known: the first page byte, or the header's own arrival, asks for it. */
class Restore {
  private header: Header | null = null;
  private failed: Error | null = null;
  child: Live | null = null;
  mem = new Uint8Array(0);
  readonly marks: bigint[] = [];

  constructor(
    private readonly img: ForkImage,
    private readonly d: SnapshotDescriptor,
    private readonly copy: string,
    private readonly headerBytes: Uint8Array,
    private readonly target: (memoryBytes: number, args: string[]) => Live,
    private readonly cache: HeaderCache,
  ) {}

  /** the checked header and its target; throws the header's error on every call once it failed */
  ready(): Header {
    if (this.header) return this.header;
    if (this.failed) throw this.failed;
    try {
      let h = this.cache.get(this.headerBytes, this.img);
      if (h) agrees(h, this.d);
      else {
        h = checkHeader(this.headerBytes, this.d);
        // the module hash, globals, tables, WASI state: refused before a page is written
        checkRestorable(this.img, { ...h, data: new Uint8Array(0) } as Snapshot);
        this.cache.set(this.headerBytes, this.img, h);
      }
      if (this.copy === 'eager' && this.d.imageBytes !== h.memoryBytes) throw new SnapshotError(`snapshot image region "${this.d.imageRegion}" holds ${this.d.imageBytes} bytes, the header's memory ${h.memoryBytes}`);
      this.marks.push(process.hrtime.bigint());
      const child = this.target(h.memoryBytes, h.meta.wasi.args);
      this.mem = new Uint8Array(child.memory.buffer);
      if (this.mem.length !== h.memoryBytes) throw new SnapshotError(`internal: target memory ${this.mem.length} bytes, snapshot ${h.memoryBytes}`);
      this.child = child;
      this.marks.push(process.hrtime.bigint());
      this.header = h;
      return h;
    } catch (e) {
      this.failed = e as Error;
      throw e;
    }
  }

  /** a sink for the snapshot's pages in a read at region offset `o`: each byte to its place (or read
   *  there: room), each page checked as soon as it is whole */
  pages(o: number): PayloadSink {
    // memory offset of body byte `at`, and how many bytes from there on are contiguous in memory (at most max)
    const place = (at: number, max: number): [number, number] => {
      const h = this.ready();
      const P = h.pageSize;
      const r = o + at - h.headerBytes;
      let k = Math.floor(r / P);
      const within = r - k * P;
      const m = h.pages[k]! * P + within;
      let n = P - within;
      while (n < max && k + 1 < h.pages.length && h.pages[k + 1] === h.pages[k]! + 1) {
        k++;
        n += P;
      }
      return [m, Math.min(n, max)];
    };
    // the pages whose last byte is in [at, at + n)
    const check = (at: number, n: number) => {
      const h = this.header!;
      const P = h.pageSize;
      const r0 = o + at - h.headerBytes;
      for (let k = Math.floor(r0 / P); (k + 1) * P <= r0 + n; k++) checkPageInMemory(h, k, this.child!.memory);
    };
    return {
      data: (b, at) => {
        for (let x = 0; x < b.length; ) {
          const [m, n] = place(at + x, b.length - x);
          this.mem.set(b.subarray(x, x + n), m);
          x += n;
        }
        check(at, b.length);
      },
      room: (at, max) => {
        const [m, n] = place(at, max);
        return this.mem.subarray(m, m + n);
      },
      placed: check,
      end: () => {},
    };
  }

  /** a sink for the memory image at offset `o` (eager): checked whole at the end (checkImage) */
  image(o: number): PayloadSink {
    return {
      data: (b, at) => {
        this.ready();
        this.mem.set(b, o + at);
      },
      room: (at, max) => {
        this.ready();
        return this.mem.subarray(o + at, o + at + max);
      },
      placed: () => {},
      end: () => {},
    };
  }
}

/** eager, dirty, prefetch as above; lazy reads the header only (its pages are placed as they fault: lazy-copy.ts) */
export async function pullFork(img: ForkImage, d: SnapshotDescriptor, copy: 'eager' | 'dirty' | 'prefetch' | 'lazy', src: RegionSource, target: (memoryBytes: number, args: string[]) => Live, headers: HeaderCache = new HeaderCache()): Promise<Pulled> {
  const t0 = process.hrtime.bigint();
  const headerBytes = new Uint8Array(d.headerBytes);
  const restore = new Restore(img, d, copy, headerBytes, target, headers);
  // the header's read goes out first: the stream answers in order, so it is whole before any page byte
  const header = src.stream(d.region, 0, d.headerBytes, sinkInto(headerBytes));
  // the pages asked for with the header (pullPlan): eager the image, dirty the pages, prefetch the working set when the descriptor names its ranges
  const e = earlyRanges(d, copy);
  const early = copy === 'prefetch' && e ? e.ranges : null;
  const pages = e ? streamRanges(src, e.region, e.ranges, (o) => (e.image ? restore.image(o) : restore.pages(o))) : null;
  // a bad header fails the page reads with the header's own error; report that one
  pages?.catch(() => {});
  await header;
  const h = restore.ready();
  let bytes = d.headerBytes;
  let rest: Pulled['rest'] = null;
  if (pages) bytes += await pages;
  if (copy === 'eager') checkImage(img, h, restore.child!);
  if (copy === 'prefetch') {
    const all = [...h.pages.keys()];
    let ws: number[];
    if (early) ws = pagesIn(early, h, d.region);
    else {
      ws = fromRuns(h.meta.workingSet ?? toAll(h.pages.length), h.pages.length);
      bytes += await streamRanges(src, d.region, pageRanges(ws, h.headerBytes, h.pageSize), (o) => restore.pages(o));
    }
    if (ws.length < all.length) {
      const inWs = new Set(ws);
      const left = all.filter((k) => !inWs.has(k));
      rest = () => streamRanges(src, d.region, pageRanges(left, h.headerBytes, h.pageSize), (o) => restore.pages(o));
    }
  }
  const t3 = process.hrtime.bigint();
  const child = restore.child!;
  setGlobals(img, h, child);
  const t4 = process.hrtime.bigint();
  const [t1, t2] = restore.marks as [bigint, bigint];
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

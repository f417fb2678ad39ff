// The lazy remote fork's fault handler (lazy-copy.ts starts it): a worker thread, because the thread
// that faults is the agent's JS thread, blocked in the kernel until its page is placed. Per fault it
// fills a window of pages from the fault on (doubled while the faults walk forward, up to maxWindow, as
// MITOSIS-style prefetch would): the snapshot's pages read from the parent over a link of
// its own (each checked against its checksum before it is placed), the others from the module's
// initial image or zeroes. On any failure it reports, then gives the range up so the JS thread goes on.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { connectLink, regionStream, type Link } from '../../platform/link.js';
import { sinkInto } from '../../platform/frame-stream.js';
import { checkPage } from './snapshot-format.js';
import { EEXIST, addressOf, copyPages, readFaults, unregister, wake, zeroPages } from './uffd.js';

/** Where a child's snapshot pages are: the parent's region, and the header's page table */
export interface LazySource {
  pageSize: number;
  headerBytes: number;
  region: string;
  parent: string;
  pages: Uint32Array;
  pageDigests: BigInt64Array;
}

export interface ServeMessage extends LazySource {
  type: 'serve';
  fork: number;
  base: bigint;
  memoryBytes: number;
  /** the module's initial image, sent once per key */
  initialKey: string;
  initial?: Uint8Array;
  /** pages filled by a fault, at first and at most: a fault just past the last window doubles it */
  window: number;
  maxWindow: number;
  timeoutMs: number;
  /** [state: 1 serving, 2 failed; faults; pages read from the parent] */
  status: Int32Array;
}
export type WorkerMessage = ServeMessage | { type: 'stop'; fork: number };

interface Ctx extends ServeMessage {
  kOf: Int32Array;
  placed: Uint8Array;
  stopped: boolean;
  /** the window the next fault fills, and where the last one ended */
  next: number;
  lastEnd: number;
}

const { fd, port } = workerData as { fd: number; port: MessagePort };
const contexts = new Map<number, Ctx>();
const initials = new Map<string, Uint8Array>();
const links = new Map<string, Promise<Link>>();
let pending: { at: number; addr: bigint }[] = [];
let running = false;

const immediate = () => new Promise<void>((r) => setImmediate(r));

function linkTo(endpoint: string): Promise<Link> {
  let p = links.get(endpoint);
  if (!p) {
    p = connectLink(endpoint);
    links.set(endpoint, p);
    const forget = () => links.delete(endpoint);
    p.then((l) => l.onClose(forget), forget);
  }
  return p;
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

const P = (c: Ctx) => BigInt(c.pageSize);

/** [from, to) page runs of one kind from page m on: snapshot pages k, k+1, … or pages not in the snapshot */
function runs(c: Ctx, m: number): [number, number][] {
  c.next = m === c.lastEnd ? Math.min(c.maxWindow, c.next * 2) : c.window;
  const end = Math.min(c.memoryBytes / c.pageSize, m + c.next);
  c.lastEnd = end;
  const out: [number, number][] = [];
  for (let p = m; p < end; ) {
    if (c.placed[p]) {
      p++;
      continue;
    }
    const k = c.kOf[p]!;
    let q = p + 1;
    while (q < end && !c.placed[q] && (k >= 0 ? c.kOf[q] === k + (q - p) : c.kOf[q]! < 0)) q++;
    out.push([p, q]);
    p = q;
  }
  return out;
}

/** Places pages [p, q) from `src` (null: from the initial image, then zeroes), each piece in one ioctl
 *  where it can. False once the range was given up (the fork stopped). */
function put(c: Ctx, p: number, q: number, src: Uint8Array | null): boolean {
  const S = c.pageSize;
  const at = (x: number) => c.base + BigInt(x) * P(c);
  const pieces: [number, number, Uint8Array | null][] = [];
  if (src) pieces.push([p, q, src]);
  else {
    const init = initials.get(c.initialKey)!;
    const split = Math.min(q, Math.max(p, init.length / S));
    if (split > p) pieces.push([p, split, init.subarray(p * S, split * S)]);
    if (q > split) pieces.push([split, q, null]);
  }
  const place = (a: number, b: number, bytes: Uint8Array | null) => (bytes ? copyPages(fd, at(a), addressOf(bytes), (b - a) * S) : zeroPages(fd, at(a), (b - a) * S));
  for (const [a, b, bytes] of pieces) {
    let e = place(a, b, bytes);
    if (e === EEXIST) {
      // a page already there (placed by an earlier window): one page at a time, waking its fault
      e = 0;
      for (let x = a; x < b && !e; x++) {
        const one = place(x, x + 1, bytes && bytes.subarray((x - a) * S, (x - a + 1) * S));
        if (one === EEXIST) wake(fd, at(x), S);
        else e = one;
      }
    }
    if (e) {
      if (c.stopped) return false;
      throw new Error(`UFFDIO_COPY of memory pages ${a}…${b - 1} failed (errno ${e})`);
    }
    c.placed.fill(1, a, b);
  }
  return true;
}

async function fault(c: Ctx, addr: bigint): Promise<void> {
  const m = Number((addr - c.base) / P(c));
  Atomics.add(c.status, 1, 1);
  if (c.placed[m]) {
    wake(fd, c.base + BigInt(m) * P(c), c.pageSize);
    return;
  }
  const rs = runs(c, m);
  const link = await linkTo(c.parent);
  // every snapshot page of the window read and checked before any is placed: a bad one fails the fault
  const got = await Promise.all(
    rs.map(async ([p, q]) => {
      const k = c.kOf[p]!;
      if (k < 0) return null;
      // streamed where the link can: the socket reads straight into the buffer the pages are placed from
      const bytes = new Uint8Array((q - p) * c.pageSize);
      await within(regionStream(link, c.region, c.headerBytes + k * c.pageSize, bytes.length, sinkInto(bytes)), c.timeoutMs, `read of snapshot pages ${k}…${k + q - p - 1} from ${c.parent}`);
      for (let i = 0; i < q - p; i++) checkPage(c, k + i, bytes.subarray(i * c.pageSize, (i + 1) * c.pageSize));
      Atomics.add(c.status, 2, q - p);
      return bytes;
    }),
  );
  for (let i = 0; i < rs.length; i++) if (!put(c, rs[i]![0], rs[i]![1], got[i]!)) return;
}

function failed(c: Ctx, e: Error): void {
  if (c.stopped) return;
  port.postMessage({ fork: c.fork, message: e.message });
  Atomics.store(c.status, 0, 2);
  c.stopped = true;
  contexts.delete(c.fork);
  // the JS thread's fault retries as an ordinary one and goes on; the fork is then reported failed
  unregister(fd, c.base, c.memoryBytes);
}

const owner = (addr: bigint): Ctx | undefined => [...contexts.values()].find((c) => addr >= c.base && addr < c.base + BigInt(c.memoryBytes));

async function loop(): Promise<void> {
  running = true;
  while (contexts.size) {
    const now = Date.now();
    // faults already read do not wait for more
    const faults = [...pending, ...readFaults(fd, pending.length ? 0 : 2).map((addr) => ({ at: now, addr }))];
    pending = [];
    let served = false;
    for (const f of faults) {
      const c = owner(f.addr);
      // a fault before its context arrived waits for it a while; one of a fork already stopped is dropped
      if (!c) {
        if (now - f.at < 1000) pending.push(f);
        continue;
      }
      served = true;
      try {
        await fault(c, f.addr);
      } catch (e) {
        failed(c, e as Error);
      }
    }
    if (!served) await immediate();
  }
  running = false;
}

parentPort!.on('message', (m: WorkerMessage) => {
  if (m.type === 'stop') {
    const c = contexts.get(m.fork);
    if (c) c.stopped = true;
    contexts.delete(m.fork);
    return;
  }
  if (m.initial) initials.set(m.initialKey, m.initial);
  const kOf = new Int32Array(m.memoryBytes / m.pageSize).fill(-1);
  m.pages.forEach((p, k) => (kOf[p] = k));
  contexts.set(m.fork, { ...m, kOf, placed: new Uint8Array(kOf.length), stopped: false, next: m.window, lastEnd: -1 });
  if (!running) void loop();
});

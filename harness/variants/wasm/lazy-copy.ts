// Lazy remote fork (copy=lazy), MITOSIS's design under V8: the child's memory is registered with
// userfaultfd (uffd.ts) after its pages are dropped, so each page the first call touches faults; a
// worker thread (lazy-worker.ts) with its own link to the parent fills a window of pages from each
// fault, every snapshot page checked before it is placed. Pages never touched never move. The child
// keeps holes where it did not touch, so it serves its one call and is not reused.
import { Worker, MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { SnapshotError } from './snapshot-format.js';
import { addressOf, closeFd, dropPages, openUffd, registerMissing, unregister } from './uffd.js';
import type { LazySource, ServeMessage, WorkerMessage } from './lazy-worker.js';

/** pages filled per fault, from the faulting one on: 64 × 4 KiB at first, doubled while the faults walk forward, up to 1024 (4 MiB) */
export const LAZY_WINDOW = 64;
export const LAZY_MAX_WINDOW = 1024;
const FETCH_TIMEOUT_MS = 5000;
const EINVAL = 22;
const ENOENT = 2;

let tried: { ok: true } | { ok: false; reason: string } | null = null;

/** Whether this process can take page faults on a descriptor (userfaultfd(2) tried once), with why not. */
export function lazyStatus(): { ok: true } | { ok: false; reason: string } {
  if (!tried) {
    try {
      closeFd(openUffd());
      tried = { ok: true };
    } catch (e) {
      tried = { ok: false, reason: `lazy (on-demand) copy needs userfaultfd(2), and here it is refused: ${(e as Error).message}` };
    }
  }
  return tried;
}

export interface LazyBegin extends LazySource {
  memory: WebAssembly.Memory;
  initial: Uint8Array;
  initialKey: string;
}

/** One child's registered memory, until end(). */
export interface LazySession {
  /** gives the range up; the faults served and the snapshot pages read; throws what the worker failed with */
  end(): { faults: number; pagesRead: number };
}

/** The userfaultfd and its worker, made on first use and kept for the agent's life. */
export class LazyPager {
  constructor(private readonly windows: { window: number; maxWindow: number } = { window: LAZY_WINDOW, maxWindow: LAZY_MAX_WINDOW }) {}

  private fd = -1;
  private worker: Worker | null = null;
  private port: MessagePort | null = null;
  private forks = 0;
  private readonly sent = new Set<string>();

  private start(): void {
    if (this.worker) return;
    const s = lazyStatus();
    if (!s.ok) throw new SnapshotError(s.reason);
    this.fd = openUffd();
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(new URL('./lazy-worker.js', import.meta.url), { workerData: { fd: this.fd, port: port2 }, transferList: [port2] });
    this.worker.unref();
    this.worker.on('error', (e) => process.stderr.write(`lazy fork: the fault worker failed: ${e.message}\n`));
  }

  begin(b: LazyBegin): LazySession {
    this.start();
    const fd = this.fd;
    const fork = ++this.forks;
    const bytes = new Uint8Array(b.memory.buffer);
    const base = addressOf(bytes);
    const len = bytes.length;
    const status = new Int32Array(new SharedArrayBuffer(12));
    status[0] = 1;
    dropPages(base, len);
    registerMissing(fd, base, len);
    const fresh = !this.sent.has(b.initialKey);
    this.sent.add(b.initialKey);
    const serve: ServeMessage = {
      type: 'serve',
      fork,
      base,
      memoryBytes: len,
      pageSize: b.pageSize,
      headerBytes: b.headerBytes,
      region: b.region,
      parent: b.parent,
      pages: b.pages,
      pageDigests: b.pageDigests,
      initialKey: b.initialKey,
      ...(fresh ? { initial: b.initial } : {}),
      ...this.windows,
      timeoutMs: FETCH_TIMEOUT_MS,
      status,
    };
    this.worker!.postMessage(serve);
    return {
      end: () => {
        const e = unregister(fd, base, len);
        this.worker!.postMessage({ type: 'stop', fork } satisfies WorkerMessage);
        if (Atomics.load(status, 0) === 2) {
          for (let m = receiveMessageOnPort(this.port!); m; m = receiveMessageOnPort(this.port!)) {
            const f = m.message as { fork: number; message: string };
            if (f.fork === fork) throw new SnapshotError(`lazy copy: ${f.message}`);
          }
          throw new SnapshotError('lazy copy: the fault worker failed');
        }
        if (e && e !== EINVAL && e !== ENOENT) throw new SnapshotError(`lazy copy: UFFDIO_UNREGISTER failed (errno ${e})`);
        return { faults: status[1]!, pagesRead: status[2]! };
      },
    };
  }

  close(): void {
    const fd = this.fd;
    // the descriptor outlives the worker, which may be polling it
    if (this.worker) void this.worker.terminate().then(() => closeFd(fd));
    else if (fd >= 0) closeFd(fd);
    this.worker = null;
    this.port?.close();
    this.port = null;
    this.fd = -1;
    this.sent.clear();
  }
}

// Remote fork of WASM instances (platform/remote-fork.ts): the parent publishes a warm instance's
// snapshot as two regions (the encoded snapshot, with its working set in the meta, and the whole
// memory image for eager copies); a child pulls them (remote-pull.ts) into a fresh instance, from a
// prefaulted one kept ready per memory size when there is one, and serves one call.
import { InvokeError } from '../../platform/variant.js';
import type { RegionTable } from '../../platform/link.js';
import type { ForkFromRequest, ForkResult, RegionPiece, RegionSource, RemoteCopy, SnapshotDescriptor } from '../../platform/remote-fork.js';
import { run, type Live } from './engine.js';
import { prefault } from './instance-pool.js';
import { HeaderCache, pageRanges, pullFork, pullPlan } from './remote-pull.js';
import { freshInstance, fullImage, instantiateParent, tablesIntact, takeSnapshot, type ForkImage } from './snapshot.js';
import { encodeSnapshot } from './snapshot-format.js';
import { recordWorkingSet, toRuns } from './working-set.js';
import { LazyPager } from './lazy-copy.js';

const now = () => process.hrtime.bigint();

export class WasmRemoteFork {
  private readonly published = new Map<string, string[]>();
  private readonly pools = new Map<string, Live>();
  private refill: NodeJS.Immediate | null = null;
  /** the last prefetch child's background pull: the next fork waits for it, so pulls never overlap */
  private background: Promise<unknown> = Promise.resolve();
  private generation = 0;
  private readonly headers = new HeaderCache();
  private readonly lazy: LazyPager;
  /** children made fresh again as the next fork's target, instead of a new instance */
  reused = 0;

  constructor(
    private readonly variant: string,
    private readonly maxPages: number,
    /** copy=lazy: pages a fault fills, at first and at most (lazy-copy.ts) */
    lazyWindows?: { window: number; maxWindow: number },
  ) {
    this.lazy = new LazyPager(lazyWindows);
  }

  async snapshotRegister(img: ForkImage, input: Uint8Array, calls: number, regions: RegionTable): Promise<SnapshotDescriptor> {
    const t0 = now();
    const live = instantiateParent(img);
    for (let i = 0; i < calls; i++) run(img.code, live, input, this.maxPages);
    const t1 = now();
    const s = takeSnapshot(img, live, calls);
    const ws = await recordWorkingSet(img, s, input, this.maxPages);
    s.meta.workingSet = toRuns(ws.pages);
    const encoded = encodeSnapshot(s);
    const image = fullImage(img, s);
    const headerBytes = encoded.length - s.data.length;
    const base = `snap/${this.variant}/${img.code.name}/${++this.generation}`;
    for (const old of this.published.get(img.code.name) ?? []) regions.unregister(old);
    regions.register(base, encoded);
    regions.register(`${base}/image`, image);
    this.published.set(img.code.name, [base, `${base}/image`]);
    return {
      variant: this.variant,
      fn: img.code.name,
      region: base,
      headerBytes,
      totalBytes: encoded.length,
      imageRegion: `${base}/image`,
      imageBytes: image.length,
      pages: s.pages.length,
      workingSetPages: ws.pages.length,
      workingSetRanges: pageRanges(ws.pages, headerBytes, s.pageSize),
      workingSetValidated: ws.validated,
      workingSetMethod: ws.method,
      workingSetNs: ws.recordNs,
      ...(ws.watchedCallNs !== undefined ? { workingSetWatchedCallNs: ws.watchedCallNs } : {}),
      ...(ws.plainCallNs !== undefined ? { workingSetPlainCallNs: ws.plainCallNs } : {}),
      ...(ws.programNs != null ? { workingSetProgramNs: ws.programNs } : {}),
      parentCallsNs: Number(t1 - t0),
      snapshotNs: Number(now() - t1),
    };
  }

  /** what a child reads before its answer (remote-pull.ts), so a parent can push it */
  pushPlan(d: SnapshotDescriptor, copy: RemoteCopy): RegionPiece[] {
    return pullPlan(d, copy);
  }

  async forkFrom(img: ForkImage, req: ForkFromRequest, src: RegionSource): Promise<ForkResult> {
    if (req.copy === 'lazy') return this.lazyFork(img, req, src);
    const tw = now();
    await this.background.catch(() => {});
    const t0 = now();
    const pulled = await pullFork(img, req.snapshot, req.copy, src, (bytes, args) => this.target(img, bytes, args), this.headers);
    const t1 = now();
    const output = run(img.code, pulled.child, req.input, this.maxPages);
    const t2 = now();
    let restBytes = 0;
    if (pulled.rest) {
      // the rest follows the answer; what it will move is known from the header
      const left = pulled.header.pages.length - (pulled.bytes - req.snapshot.headerBytes) / pulled.header.pageSize;
      restBytes = left * pulled.header.pageSize;
      const rest = pulled.rest;
      this.background = new Promise<void>((r) => setImmediate(r)).then(rest).catch((e: Error) => process.stderr.write(`remote fork of ${img.code.name}: the background pull failed: ${e.message}\n`));
    }
    // a prefetch child still receives its rest after the answer: it is not reused
    this.scheduleRefill(img, pulled.header.memoryBytes, pulled.header.meta.wasi.args, pulled.rest ? undefined : pulled.child);
    return {
      output,
      forkNs: Number(t1 - t0),
      firstResponseNs: Number(t2 - t0),
      bytesBeforeResponse: pulled.bytes,
      bytesMoved: pulled.bytes + restBytes,
      childMemoryBytes: pulled.child.memory.buffer.byteLength,
      phasesNs: { wait: Number(t0 - tw), ...pulled.phasesNs, run: Number(t2 - t1) },
    };
  }

  /** copy=lazy: the header now, each page when the call first touches it (lazy-copy.ts) */
  private async lazyFork(img: ForkImage, req: ForkFromRequest, src: RegionSource): Promise<ForkResult> {
    const tw = now();
    await this.background.catch(() => {});
    const t0 = now();
    const pulled = await pullFork(img, req.snapshot, 'lazy', src, (bytes, args) => this.target(img, bytes, args), this.headers);
    const h = pulled.header;
    const tb = now();
    let session;
    try {
      session = this.lazy.begin({ memory: pulled.child.memory, pageSize: h.pageSize, headerBytes: h.headerBytes, region: req.snapshot.region, parent: req.peer, pages: h.pages, pageDigests: h.pageDigests, initial: img.initial, initialKey: img.sha256 });
    } catch (e) {
      throw new InvokeError('unavailable', (e as Error).message);
    }
    const t1 = now();
    let output: Uint8Array | undefined;
    let error: unknown = null;
    try {
      output = run(img.code, pulled.child, req.input, this.maxPages);
    } catch (e) {
      error = e;
    }
    // the child has holes where it did not touch: never reused; the next fork's target is made all the same
    this.scheduleRefill(img, h.memoryBytes, h.meta.wasi.args);
    // the worker's failure first: a page it could not place explains a failed call, or a wrong answer
    const paged = session.end();
    if (error) throw error;
    const t2 = now();
    const bytes = req.snapshot.headerBytes + paged.pagesRead * h.pageSize;
    return {
      output: output!,
      forkNs: Number(t1 - t0),
      firstResponseNs: Number(t2 - t0),
      bytesBeforeResponse: bytes,
      bytesMoved: bytes,
      childMemoryBytes: pulled.child.memory.buffer.byteLength,
      phasesNs: { wait: Number(t0 - tw), ...pulled.phasesNs, register: Number(t1 - tb), run: Number(t2 - t1) },
    };
  }

  /** a prefaulted fresh instance of this size when one is ready, else a new one */
  private target(img: ForkImage, memoryBytes: number, args: string[]): Live {
    const key = `${img.code.name}/${memoryBytes}`;
    const ready = this.pools.get(key);
    this.pools.delete(key);
    return ready ?? freshInstance(img, args, memoryBytes);
  }

  /**
   * After the answer: the next fork's target, prefaulted. The child that just answered is reused when
   * it can be made fresh again: same memory size (it did not grow), tables unchanged; its memory is
   * set back to the initial image (the next restore sets every mutable global, and WASI state is per
   * call). That writes its pages without faulting them again, and spares V8 a new memory reservation
   * per fork and the collections that free them (in a profile: refill 1.3 ms and GC 0.9 ms a fork).
   */
  private scheduleRefill(img: ForkImage, memoryBytes: number, args: string[], used?: Live): void {
    if (this.refill) clearImmediate(this.refill);
    this.refill = setImmediate(() => {
      this.refill = null;
      const key = `${img.code.name}/${memoryBytes}`;
      if (this.pools.has(key)) return;
      let live: Live;
      if (used && used.memory.buffer.byteLength === memoryBytes && used.host.args.join('\0') === args.join('\0') && tablesIntact(img, used)) {
        live = used;
        const mem = new Uint8Array(live.memory.buffer);
        mem.set(img.initial.subarray(0, Math.min(img.initial.length, mem.length)));
        if (mem.length > img.initial.length) mem.fill(0, img.initial.length);
        this.reused++;
      } else {
        live = freshInstance(img, args, memoryBytes);
        prefault(new Uint8Array(live.memory.buffer), img.initial);
      }
      this.pools.set(key, live);
    });
  }

  teardown(regions?: RegionTable): void {
    this.lazy.close();
    if (this.refill) clearImmediate(this.refill);
    this.refill = null;
    this.pools.clear();
    if (regions) for (const ids of this.published.values()) for (const id of ids) regions.unregister(id);
    this.published.clear();
  }
}

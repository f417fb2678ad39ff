// Variant "wasm-fork", mode local-fork: every invocation runs in a new instance forked, in this
// process, from a snapshot of a warm parent. The parent of (function, input) is initialised, serves
// `parentCalls` calls (default 1) of that input, and is snapshotted once; each invocation then makes a
// child from the snapshot (without running initialisation) and the child serves the call. So a child
// answers as the parent's next call would: stateless functions answer as a fresh instance does
// (their usual oracle), counter answers parentCalls + 1, statefill calls=2 with the parent's checksum.
// The parent's setup is not on the invocation's clock; lastForkNs is the fork alone.
import { createHash } from 'node:crypto';
import type { FunctionEntry } from '../functions/types.js';
import { InvokeError, type Capability, type Invocation, type InvokeOptions, type Mode, type Variant, type VariantOptions, type VariantPlugin } from '../platform/variant.js';
import { run, type Live, type WasmCode } from './wasm/engine.js';
import { WASM_PAGE } from './wasm/module-edit.js';
import { InstancePool } from './wasm/instance-pool.js';
import { fork, freshInstance, instantiateParent, prepareImage, restoreInto, takeSnapshot, type CopyMode, type ForkImage } from './wasm/snapshot.js';
import { CowImage } from './wasm/cow-image.js';
import type { Snapshot } from './wasm/snapshot-format.js';
import { WasmRemoteFork } from './wasm/remote-fork.js';
import type { RegionTable } from '../platform/link.js';
import type { ModeDecl } from '../platform/modes.js';
import type { ForkFromRequest, ForkResult, RegionPiece, RegionSource, RemoteCopy, RemoteForker, SnapshotDescriptor } from '../platform/remote-fork.js';

/** each call in a child forked in-process from a warm parent's snapshot; its own colour, not a shade of cold */
const LOCAL_FORK: ModeDecl = { id: 'local-fork', label: 'local-fork', rank: 4, colour: '#c2185b' };

export interface ForkOptions {
  /** eager: copy the whole memory image; dirty: only the pages that differ from the initial image; cow: map
   *  the image copy-on-write (cow-image.ts; fastest to fork and to the first answer here, so the default) */
  copy: CopyMode | 'cow';
  /** fresh instances kept ready per parent (0: none), prefaulted unless copy is cow; refilled after each invocation, off its clock */
  pool: number;
  /** calls the parent serves before its snapshot */
  parentCalls: number;
}

export const DEFAULT_FORK: ForkOptions = { copy: 'cow', pool: 1, parentCalls: 1 };

interface Parent {
  inputDigest: string;
  snapshot: Snapshot;
  pool: InstancePool | null;
  /** copy=cow: the snapshot's image in a memfd */
  cow: CowImage | null;
}

export class WasmForkVariant implements Variant, RemoteForker {
  readonly name = 'wasm-fork';
  readonly modes: readonly Mode[] = [LOCAL_FORK.id];
  private readonly maxPages: number;
  private readonly images = new Map<string, ForkImage>();
  private readonly parents = new Map<string, Parent>();
  private refill: NodeJS.Immediate | null = null;
  private readonly remote: WasmRemoteFork;
  private regions: RegionTable | undefined;
  /** ns of the last invocation's fork (fresh or pooled instance + restore), and pool refill ns so far */
  lastForkNs = 0;
  poolFillNs = 0;

  constructor(
    opts: VariantOptions,
    readonly forkOpts: ForkOptions = DEFAULT_FORK,
  ) {
    this.maxPages = Math.floor((opts.memoryLimitMiB * 2 ** 20) / WASM_PAGE);
    if (!Number.isInteger(forkOpts.parentCalls) || forkOpts.parentCalls < 0) throw new Error(`wasm-fork: parentCalls must be an integer >= 0, got ${forkOpts.parentCalls}`);
    this.remote = new WasmRemoteFork(this.name, this.maxPages);
  }

  /** Parent of a remote fork (the agent's snapshot-register): see wasm/remote-fork.ts. */
  async snapshotRegister(fn: FunctionEntry, input: Uint8Array, calls: number, regions: RegionTable): Promise<SnapshotDescriptor> {
    const why = this.supports(fn, 'local-fork');
    if (why) throw new InvokeError('unavailable', why);
    this.regions = regions;
    try {
      return await this.remote.snapshotRegister(this.image(fn), input, calls, regions);
    } catch (e) {
      if (e instanceof InvokeError) throw e;
      throw new InvokeError('unavailable', `${fn.name}: cannot snapshot its parent: ${(e as Error).message}`);
    }
  }

  /** Child of a remote fork (the agent's fork-from). */
  async forkFrom(fn: FunctionEntry, req: ForkFromRequest, src: RegionSource): Promise<ForkResult> {
    const why = this.supports(fn, 'local-fork');
    if (why) throw new InvokeError('unavailable', why);
    return this.remote.forkFrom(this.image(fn), req, src);
  }

  /** What a child of `d` reads before its answer, for a parent that pushes it (push-to). */
  pushPlan(d: SnapshotDescriptor, copy: RemoteCopy): RegionPiece[] {
    return this.remote.pushPlan(d, copy);
  }

  async check(): Promise<Capability> {
    return typeof WebAssembly === 'object' ? { ok: true } : { ok: false, reason: 'this Node has no WebAssembly' };
  }

  supports(fn: FunctionEntry, mode: Mode): string | null {
    if (mode !== 'local-fork') return `wasm-fork has only mode local-fork, not ${mode}`;
    if (!fn.wasm) return `${fn.name} has no WebAssembly build`;
    if (fn.wasm.abi !== 'reactor') return `${fn.name} is a WASI command module: _start runs once per instance, so there is no warm parent to fork; forking needs a reactor exporting fx_invoke`;
    return null;
  }

  private code(fn: FunctionEntry): WasmCode {
    return { name: fn.name, path: fn.wasm!.path, abi: fn.wasm!.abi };
  }

  private image(fn: FunctionEntry): ForkImage {
    let img = this.images.get(fn.name);
    if (!img) {
      img = prepareImage(this.code(fn), this.maxPages);
      this.images.set(fn.name, img);
    }
    return img;
  }

  /** The snapshot of fn's parent for this input (made, and its pool filled, on first use). */
  parent(fn: FunctionEntry, input: Uint8Array): Parent {
    const digest = createHash('sha256').update(input).digest('hex');
    const have = this.parents.get(fn.name);
    if (have?.inputDigest === digest) return have;
    const img = this.image(fn);
    const live: Live = instantiateParent(img);
    for (let i = 0; i < this.forkOpts.parentCalls; i++) run(img.code, live, input, this.maxPages);
    let snapshot: Snapshot;
    try {
      snapshot = takeSnapshot(img, live, this.forkOpts.parentCalls);
    } catch (e) {
      throw new InvokeError('unavailable', `${fn.name}: cannot snapshot its parent: ${(e as Error).message}`);
    }
    const cow = this.forkOpts.copy === 'cow';
    let image: CowImage | null = null;
    try {
      if (cow) image = CowImage.create(img, snapshot);
    } catch (e) {
      throw new InvokeError('unavailable', `${fn.name}: copy-on-write fork: ${(e as Error).message}`);
    }
    have?.pool?.clear();
    have?.cow?.close();
    const p: Parent = { inputDigest: digest, snapshot, cow: image, pool: this.forkOpts.pool > 0 ? new InstancePool(img, snapshot, this.forkOpts.pool, !cow) : null };
    if (p.pool) this.poolFillNs += p.pool.fill();
    this.parents.set(fn.name, p);
    return p;
  }

  async invoke(fn: FunctionEntry, mode: Mode, input: Uint8Array, _opts?: InvokeOptions): Promise<Invocation> {
    const why = this.supports(fn, mode);
    if (why) throw new InvokeError('unavailable', why);
    const img = this.image(fn);
    const p = this.parent(fn, input);
    const t0 = process.hrtime.bigint();
    const pooled = p.pool?.take();
    const copy = this.forkOpts.copy;
    const child =
      copy === 'cow' ? p.cow!.forkInto(img, pooled ?? freshInstance(img, p.snapshot.meta.wasi.args, p.snapshot.memoryBytes)) : pooled ? restoreInto(img, p.snapshot, copy, pooled) : fork(img, p.snapshot, copy);
    this.lastForkNs = Number(process.hrtime.bigint() - t0);
    if (p.pool) this.scheduleRefill(p.pool);
    const output = run(img.code, child, input, this.maxPages);
    return { output, elapsedNs: Number(process.hrtime.bigint() - t0) };
  }

  private scheduleRefill(pool: InstancePool): void {
    if (this.refill) return;
    this.refill = setImmediate(() => {
      this.refill = null;
      if (this.parents.get(pool.img.code.name)?.pool === pool) this.poolFillNs += pool.fill();
    });
  }

  async teardown(): Promise<void> {
    if (this.refill) clearImmediate(this.refill);
    this.refill = null;
    for (const p of this.parents.values()) {
      p.pool?.clear();
      p.cow?.close();
    }
    this.parents.clear();
    this.images.clear();
    this.remote.teardown(this.regions);
  }
}

const plugin: VariantPlugin = {
  name: 'wasm-fork',
  modes: [LOCAL_FORK],
  summary: 'V8 WebAssembly, local-fork: each call runs in a child forked in-process from a snapshot of a parent that served one call of the same input (the snapshot\'s memory image mapped copy-on-write over a fresh instance; initialisation does not run again)',
  create: (opts) => new WasmForkVariant(opts),
  // a way to start a new instance: set beside the cold starts (and the fork experiment, later)
  experiments: ['cold-start', 'fork'],
};
export default plugin;

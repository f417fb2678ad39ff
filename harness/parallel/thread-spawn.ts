// WASM threads the wasi-threads way, without a wasi-threads libc: the module (spawn build) spawns its
// own threads through the host's `wasi` `thread-spawn` import and joins them on a counter in the
// shared memory with memory.atomic.wait32; the host serves thread-spawn from a pool of pre-started
// workers (one worker per live thread; starting a Node worker per call would cost tens of ms), each
// entering the module at wasi_thread_start(tid, arg). As in ThreadedInstance, a trap in any thread
// takes the whole instance down and names the thread.
import { Worker } from 'node:worker_threads';
import type { Case } from './kernels.js';
import { call, clearOutputs, collect, layout, writeInputs, type Layout } from './wasm-layout.js';
import { kernelModuleAndStack, pagesFor } from './wasm-module.js';
import { CTL, ERROR_BYTES, FN_NAMES, SPAWN_SLOT, slotError, type SpawnThreadInit } from './wasm-threads-shared.js';
import { ThreadGroup, ThreadTrapError } from './thread-group.js';

const STACK_BYTES = 64 * 1024;
const JOB_BYTES = 36; // struct job in spawn.c: fn, a[7], left

export class SpawnInstance extends ThreadGroup {
  private readonly ctl: Int32Array;
  private readonly errors: Uint8Array;
  private readonly mem: Uint8Array;
  private nextTid = 1;
  private parallel!: (jobs: number, threads: number, left: number, timeoutNs: bigint) => number;
  /** spawn requests the pool could not serve in the last run */
  refused = 0;

  private constructor(
    readonly memory: WebAssembly.Memory,
    private readonly l: Layout,
    private readonly jobs: number,
    private readonly left: number,
    control: SharedArrayBuffer,
    errors: SharedArrayBuffer,
  ) {
    super();
    this.ctl = new Int32Array(control);
    this.errors = new Uint8Array(errors);
    this.mem = new Uint8Array(memory.buffer);
  }

  /** a pool of `poolSize` (default threads − 1) workers; the calling thread is the module's thread 0 */
  static async create(c: Case, threads: number, capPages: number, poolSize = threads - 1): Promise<SpawnInstance> {
    const { module, stackGlobal } = kernelModuleAndStack('spawn', capPages);
    const probe = new WebAssembly.Instance(module, { env: { memory: new WebAssembly.Memory({ initial: 2, maximum: capPages, shared: true }) }, wasi: { 'thread-spawn': () => -1 } });
    const base = (probe.exports.__heap_base as WebAssembly.Global).value as number;
    const stacks = base;
    const l = layout(c.input, threads, stacks + (poolSize + 1) * STACK_BYTES);
    const jobs = Math.ceil(l.end / 64) * 64;
    const left = jobs + Math.ceil((threads * JOB_BYTES) / 64) * 64;
    const memory = new WebAssembly.Memory({ initial: pagesFor(left + 64, capPages, `${c.input.kernel} ${c.input.size}`), maximum: capPages, shared: true });
    const self = new SpawnInstance(memory, l, jobs, left, new SharedArrayBuffer(4 * (CTL.slots + poolSize * SPAWN_SLOT.size)), new SharedArrayBuffer(ERROR_BYTES * Math.max(1, poolSize)));
    writeInputs(self.mem, c.input, l);
    const dv = new DataView(memory.buffer);
    for (let t = 0; t < threads; t++) {
      const k = call(l, t);
      const at = jobs + t * JOB_BYTES;
      dv.setUint32(at, FN_NAMES.indexOf(k.fn as (typeof FN_NAMES)[number]), true);
      k.args.forEach((a, i) => dv.setUint32(at + 4 + 4 * i, a >>> 0, true));
      dv.setUint32(at + 32, left, true);
    }
    const main = new WebAssembly.Instance(module, { env: { memory }, wasi: { 'thread-spawn': (arg: number) => self.spawn(arg) } });
    if (stackGlobal) (main.exports[stackGlobal] as WebAssembly.Global).value = stacks + STACK_BYTES;
    self.parallel = main.exports.k_parallel as SpawnInstance['parallel'];
    try {
      await Promise.all(
        Array.from({ length: poolSize }, (_, index) => {
          const init: SpawnThreadInit = { module, memory, control: self.ctl.buffer as SharedArrayBuffer, errors: self.errors.buffer as SharedArrayBuffer, index, stackGlobal, stackTop: stacks + (index + 2) * STACK_BYTES };
          const w = new Worker(new URL('./thread-spawn-worker.js', import.meta.url), { workerData: init });
          self.workers.push(w);
          return new Promise<void>((resolve, reject) => {
            w.once('message', () => resolve());
            w.once('error', reject);
            w.once('exit', (code) => reject(new Error(`pooled thread ${index} exited (${code}) before it was ready`)));
          });
        }),
      );
    } catch (e) {
      await self.close();
      throw e;
    }
    for (const w of self.workers) w.removeAllListeners('exit').removeAllListeners('error').on('error', () => {});
    return self;
  }

  /** for tests: argument i of thread t's slice (e.g. a pointer past the memory's end) */
  setArg(t: number, i: number, value: number): void {
    new DataView(this.memory.buffer).setUint32(this.jobs + t * JOB_BYTES + 4 + 4 * i, value >>> 0, true);
  }

  /** the host's wasi thread-spawn: an idle pooled worker enters wasi_thread_start(tid, arg); -1 when none is idle */
  private spawn(arg: number): number {
    for (let i = 0; i < this.workers.length; i++) {
      const s = CTL.slots + i * SPAWN_SLOT.size;
      if (Atomics.compareExchange(this.ctl, s + SPAWN_SLOT.busy, 0, 1) !== 0) continue;
      const tid = this.nextTid++;
      this.ctl[s + SPAWN_SLOT.tid] = tid;
      this.ctl[s + SPAWN_SLOT.arg] = arg | 0;
      Atomics.add(this.ctl, s + SPAWN_SLOT.gen, 1);
      Atomics.notify(this.ctl, s + SPAWN_SLOT.gen);
      return tid;
    }
    this.refused++;
    return -1;
  }

  /** one parallel run (the module spawns, computes slice 0, joins); its time in ns */
  run(timeoutMs = 60_000): number {
    if (this.dead) throw new ThreadTrapError(`instance is down: ${this.dead}`);
    // a worker marks itself idle just after its slice: wait for that, or the next spawn finds none
    for (let i = 0; i < this.workers.length; i++) {
      const s = CTL.slots + i * SPAWN_SLOT.size + SPAWN_SLOT.busy;
      if (Atomics.load(this.ctl, s) !== 0 && Atomics.wait(this.ctl, s, 1, timeoutMs) === 'timed-out') this.takeDown(`pooled thread ${i} still busy after ${timeoutMs} ms`);
    }
    clearOutputs(this.mem, this.l);
    Atomics.store(this.ctl, CTL.failed, 0);
    this.refused = 0;
    const t0 = process.hrtime.bigint();
    let rc: number;
    try {
      rc = this.parallel(this.jobs, this.l.threads, this.left, BigInt(timeoutMs) * 1_000_000n);
    } catch (e) {
      this.takeDown(`thread 0 of ${this.l.threads} trapped: ${(e as Error).name}: ${(e as Error).message}`);
    }
    const ns = Number(process.hrtime.bigint() - t0);
    const failed = Atomics.load(this.ctl, CTL.failed);
    if (failed) {
      this.takeDown(`spawned thread (pool slot ${failed - 1}) trapped: ${slotError(this.errors, failed - 1)}`);
    }
    if (rc === -1) this.takeDown(`thread-spawn refused ${this.refused} request(s): the pool of ${this.workers.length} worker(s) had no idle one`);
    if (rc === -2) this.takeDown(`threads still running after ${timeoutMs} ms`);
    return ns;
  }

  output(): Uint8Array {
    return collect(this.mem, this.l);
  }

  /** each pool slot has its own generation word */
  protected signalStop(): void {
    for (let i = 0; i < (this.ctl.length - CTL.slots) / SPAWN_SLOT.size; i++) {
      Atomics.store(this.ctl, CTL.slots + i * SPAWN_SLOT.size + SPAWN_SLOT.gen, -1);
      Atomics.notify(this.ctl, CTL.slots + i * SPAWN_SLOT.size + SPAWN_SLOT.gen);
    }
  }
}

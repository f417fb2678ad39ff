// WASM threads without wasm32-wasi-threads: one shared WebAssembly.Memory, one worker thread per
// thread, each with an instance of the kernels' threads build and a stack of its own. The instance
// (all its threads) is the unit of failure: a thread that traps or overruns takes the whole instance
// down (every worker terminated, the memory dropped) and run() throws naming the thread; other
// instances in the process are untouched.
import { Worker } from 'node:worker_threads';
import type { Case } from './kernels.js';
import { call, clearOutputs, collect, layout, writeInputs, type Layout } from './wasm-layout.js';
import { kernelModuleAndStack, pagesFor } from './wasm-module.js';
import { CTL, ERROR_BYTES, FN_NAMES, SLOT, slotError, type ThreadInit } from './wasm-threads-shared.js';
import { ThreadGroup, ThreadTrapError } from './thread-group.js';

const STACK_BYTES = 64 * 1024;

export { ThreadTrapError };

export class ThreadedInstance extends ThreadGroup {
  private readonly ctl: Int32Array;
  private readonly errors: Uint8Array;
  private readonly mem: Uint8Array;

  private constructor(
    readonly memory: WebAssembly.Memory,
    private readonly l: Layout,
    control: SharedArrayBuffer,
    errors: SharedArrayBuffer,
  ) {
    super();
    this.ctl = new Int32Array(control);
    this.errors = new Uint8Array(errors);
    this.mem = new Uint8Array(memory.buffer);
  }

  /** starts `threads` workers over a new shared memory holding the case's input */
  static async create(c: Case, threads: number, capPages: number): Promise<ThreadedInstance> {
    const { module, stackGlobal } = kernelModuleAndStack('threads', capPages);
    const probe = new WebAssembly.Instance(module, { env: { memory: new WebAssembly.Memory({ initial: 2, maximum: capPages, shared: true }) } });
    const base = (probe.exports.__heap_base as WebAssembly.Global).value as number;
    const stacks = base;
    const l = layout(c.input, threads, stacks + threads * STACK_BYTES);
    const memory = new WebAssembly.Memory({ initial: pagesFor(l.end, capPages, `${c.input.kernel} ${c.input.size}`), maximum: capPages, shared: true });
    const control = new SharedArrayBuffer(4 * (CTL.slots + threads * SLOT.size));
    const errors = new SharedArrayBuffer(ERROR_BYTES * threads);
    const self = new ThreadedInstance(memory, l, control, errors);
    writeInputs(self.mem, c.input, l);
    for (let t = 0; t < threads; t++) {
      const k = call(l, t);
      const slot = CTL.slots + t * SLOT.size;
      self.ctl[slot + SLOT.fn] = FN_NAMES.indexOf(k.fn as (typeof FN_NAMES)[number]);
      self.ctl[slot + SLOT.nargs] = k.args.length;
      k.args.forEach((a, i) => (self.ctl[slot + SLOT.args + i] = a | 0));
    }
    try {
      await Promise.all(
        Array.from({ length: threads }, (_, index) => {
          const init: ThreadInit = { module, memory, control, errors, index, stackGlobal, stackTop: stacks + (index + 1) * STACK_BYTES };
          const w = new Worker(new URL('./wasm-threads-worker.js', import.meta.url), { workerData: init });
          self.workers.push(w);
          return new Promise<void>((resolve, reject) => {
            w.once('message', () => resolve());
            w.once('error', reject);
            w.once('exit', (code) => reject(new Error(`thread ${index} exited (${code}) before it was ready`)));
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

  get threads(): number {
    return this.l.threads;
  }

  /** for tests: point thread t's first argument somewhere else (e.g. past the memory's end) */
  setArg(t: number, i: number, value: number): void {
    this.ctl[CTL.slots + t * SLOT.size + SLOT.args + i] = value | 0;
  }

  /** one parallel run; its time in ns, from releasing the threads to the last one finishing */
  run(timeoutMs = 60_000): number {
    if (this.dead) throw new ThreadTrapError(`instance is down: ${this.dead}`);
    clearOutputs(this.mem, this.l);
    Atomics.store(this.ctl, CTL.failed, 0);
    const t0 = process.hrtime.bigint();
    Atomics.store(this.ctl, CTL.remaining, this.workers.length);
    Atomics.add(this.ctl, CTL.gen, 1);
    Atomics.notify(this.ctl, CTL.gen);
    const deadline = Date.now() + timeoutMs;
    for (let left = Atomics.load(this.ctl, CTL.remaining); left > 0; left = Atomics.load(this.ctl, CTL.remaining)) {
      const ms = deadline - Date.now();
      if (ms <= 0 || Atomics.wait(this.ctl, CTL.remaining, left, ms) === 'timed-out') {
        this.takeDown(`${left} of ${this.workers.length} thread(s) still running after ${timeoutMs} ms`);
      }
    }
    const ns = Number(process.hrtime.bigint() - t0);
    const failed = Atomics.load(this.ctl, CTL.failed);
    if (failed) {
      this.takeDown(`thread ${failed - 1} of ${this.workers.length} trapped: ${slotError(this.errors, failed - 1)}`);
    }
    return ns;
  }

  output(): Uint8Array {
    return collect(this.mem, this.l);
  }

  protected signalStop(): void {
    Atomics.store(this.ctl, CTL.gen, -1);
    Atomics.notify(this.ctl, CTL.gen);
  }
}

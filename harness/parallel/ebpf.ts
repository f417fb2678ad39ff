// The kernels as eBPF (bpf/parallel.bpf.c): the input copied into the fxh_par_data array map (16 MiB
// of 4 KiB chunks), one worker thread per slice of the work, pinned to CPU (thread mod CPUs), each
// running the kernel's XDP program with BPF_PROG_RUN; partials in the per-CPU map fxh_par_part by
// thread slot, reduced here. Reduce and histogram split whole chunks (see the .bpf.c for why).
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { BpfObject } from '../bpf/libbpf/object.js';
import type { BpfMap } from '../bpf/libbpf/program-map.js';
import { repoRoot } from '../paths.js';
import { type Case, type Kernel, share } from './kernels.js';
import { CTL, ERROR_BYTES, JOB_BYTES, JOB_STRIDE, type EbpfThreadInit } from './wasm-threads-shared.js';
import { ThreadGroup, ThreadTrapError } from './thread-group.js';

export const PARALLEL_OBJECT = path.join(repoRoot, 'bpf', 'build', 'parallel.bpf.o');
const PROGRAM: Record<Kernel, string> = { reduce: 'fxh_par_reduce', histogram: 'fxh_par_hist', matmul: 'fxh_par_matmul', spmv: 'fxh_par_spmv' };
const CHUNK = 4096;
const CHUNKS = 4096;
const SLOTS = 64;
const PART_BYTES = 1032;

/** the bytes of the flat space: each array chunk-aligned; offsets in uint32 elements */
function flatLayout(c: Case): { off: Record<string, number>; out: { at: number; bytes: number } | null; chunks: number } {
  let at = 0;
  const off: Record<string, number> = {};
  for (const [name, arr] of Object.entries(c.input.arrays)) {
    off[name] = at / 4;
    at += Math.ceil(arr.byteLength / CHUNK) * CHUNK;
  }
  const k = c.input.kernel;
  const outBytes = k === 'matmul' ? c.input.size ** 2 * 4 : k === 'spmv' ? c.input.size * 4 : 0;
  const out = outBytes ? { at, bytes: outBytes } : null;
  at += Math.ceil(outBytes / CHUNK) * CHUNK;
  return { off, out, chunks: at / CHUNK };
}

export class EbpfParallel extends ThreadGroup {
  private readonly ctl: Int32Array;
  private readonly errors: Uint8Array;
  private readonly jobs: DataView;
  private readonly data: BpfMap;
  private readonly part: BpfMap;
  private readonly used: number[] = [];
  private readonly flat: ReturnType<typeof flatLayout>;

  private constructor(
    private readonly obj: BpfObject,
    private readonly c: Case,
    readonly threads: number,
  ) {
    super();
    this.flat = flatLayout(c);
    if (this.flat.chunks > CHUNKS) throw new RangeError(`${c.input.kernel} ${c.input.size} needs ${(this.flat.chunks * CHUNK) / 2 ** 20} MiB in the eBPF data map, which holds ${(CHUNKS * CHUNK) / 2 ** 20} MiB`);
    if (threads > SLOTS) throw new RangeError(`${threads} threads: the eBPF partials map has ${SLOTS} slots`);
    this.data = obj.map('fxh_par_data');
    this.part = obj.map('fxh_par_part');
    this.ctl = new Int32Array(new SharedArrayBuffer(4 * CTL.slots));
    this.errors = new Uint8Array(new SharedArrayBuffer(ERROR_BYTES * threads));
    this.jobs = new DataView(new SharedArrayBuffer(JOB_STRIDE * threads));
  }

  /** loads the programs (the verifier runs), copies the input in, starts the threads */
  static async create(c: Case, threads: number, cpus = os.availableParallelism()): Promise<EbpfParallel> {
    const obj = BpfObject.open(PARALLEL_OBJECT).load();
    let self: EbpfParallel | null = null;
    try {
      self = new EbpfParallel(obj, c, threads);
      self.writeInput();
      const progFd = obj.program(PROGRAM[c.input.kernel]).fd;
      const control = self.ctl.buffer as SharedArrayBuffer;
      const errors = self.errors.buffer as SharedArrayBuffer;
      const jobs = self.jobs.buffer as SharedArrayBuffer;
      for (let t = 0; t < threads; t++) {
        if (!self.writeJob(t)) continue; // more threads than slices: this one has nothing to do
        self.used.push(t);
      }
      await Promise.all(
        self.used.map((index) => {
          const init: EbpfThreadInit = { progFd, cpu: index % cpus, index, control, errors, jobs };
          const w = new Worker(new URL('./ebpf-worker.js', import.meta.url), { workerData: init });
          self!.workers.push(w);
          return new Promise<void>((resolve, reject) => {
            w.once('message', () => resolve());
            w.once('error', reject);
            w.once('exit', (code) => reject(new Error(`eBPF thread ${index} exited (${code}) before it was ready`)));
          });
        }),
      );
      for (const w of self.workers) w.removeAllListeners('exit').removeAllListeners('error').on('error', () => {});
      return self;
    } catch (e) {
      if (self) await self.close();
      else obj.close();
      throw e;
    }
  }

  private writeInput(): void {
    const buf = Buffer.alloc(CHUNK);
    const key = Buffer.alloc(4);
    for (const [name, arr] of Object.entries(this.c.input.arrays)) {
      const bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
      const first = this.flat.off[name]! / (CHUNK / 4);
      for (let i = 0; i * CHUNK < bytes.length; i++) {
        buf.fill(0);
        buf.set(bytes.subarray(i * CHUNK, (i + 1) * CHUNK));
        key.writeUInt32LE(first + i);
        this.data.update(key, buf);
      }
    }
  }

  /** thread t's job packet; false when its slice is empty */
  private writeJob(t: number): boolean {
    const k = this.c.input.kernel;
    const size = this.c.input.size;
    const arrayBytes = Object.values(this.c.input.arrays)[0]!.byteLength;
    const [lo, hi] = k === 'reduce' || k === 'histogram' ? share(Math.ceil(arrayBytes / CHUNK), this.threads, t) : share(size, this.threads, t);
    if (hi <= lo) return false;
    const o = this.flat.off;
    const offs = k === 'reduce' ? [o.a!] : k === 'histogram' ? [o.b!] : k === 'matmul' ? [o.A!, o.B!, this.flat.out!.at / 4] : [o.rp!, o.col!, o.val!, o.x!, this.flat.out!.at / 4];
    const base = t * JOB_STRIDE;
    for (let i = 0; i < JOB_BYTES; i += 4) this.jobs.setUint32(base + i, 0, true);
    [lo, hi, t, size, ...offs].forEach((v, i) => this.jobs.setUint32(base + 4 * i, v, true));
    return true;
  }

  /** zeroes the partials and the output region (outside the time) */
  private clear(): void {
    const key = Buffer.alloc(4);
    const zero = Buffer.alloc(this.part.lookupSize);
    for (const t of this.used) {
      key.writeUInt32LE(t);
      this.part.update(key, zero);
    }
    if (this.flat.out) {
      const z = Buffer.alloc(CHUNK);
      for (let i = 0; i * CHUNK < this.flat.out.bytes; i++) {
        key.writeUInt32LE(this.flat.out.at / CHUNK + i);
        this.data.update(key, z);
      }
    }
  }

  /** one parallel run: ns from releasing the threads to the last one finishing */
  run(timeoutMs = 60_000): number {
    if (this.dead) throw new ThreadTrapError(`eBPF run is down: ${this.dead}`);
    this.clear();
    Atomics.store(this.ctl, CTL.failed, 0);
    const t0 = process.hrtime.bigint();
    Atomics.store(this.ctl, CTL.remaining, this.workers.length);
    Atomics.add(this.ctl, CTL.gen, 1);
    Atomics.notify(this.ctl, CTL.gen);
    const deadline = Date.now() + timeoutMs;
    for (let left = Atomics.load(this.ctl, CTL.remaining); left > 0; left = Atomics.load(this.ctl, CTL.remaining)) {
      const ms = deadline - Date.now();
      if (ms <= 0 || Atomics.wait(this.ctl, CTL.remaining, left, ms) === 'timed-out') this.takeDown(`${left} eBPF thread(s) still running after ${timeoutMs} ms`);
    }
    const ns = Number(process.hrtime.bigint() - t0);
    const failed = Atomics.load(this.ctl, CTL.failed);
    if (failed) {
      const raw = this.errors.subarray((failed - 1) * ERROR_BYTES, failed * ERROR_BYTES);
      const end = raw.indexOf(0);
      this.takeDown(`eBPF thread ${failed - 1}: ${Buffer.from(raw.subarray(0, end < 0 ? raw.length : end)).toString()}`);
    }
    return ns;
  }

  /** the kernel's own BPF_PROG_RUN durations of the last run, per thread (ns) */
  kernelDurations(): number[] {
    return this.used.map((t) => this.jobs.getFloat64(t * JOB_STRIDE + JOB_BYTES, true));
  }

  output(): Uint8Array {
    const k = this.c.input.kernel;
    const key = Buffer.alloc(4);
    if (k === 'reduce' || k === 'histogram') {
      const stride = Math.ceil(PART_BYTES / 8) * 8;
      let sum = 0n;
      const bins = new Uint32Array(256);
      for (const t of this.used) {
        key.writeUInt32LE(t);
        const v = this.part.lookup(key)!;
        for (let cpu = 0; cpu * stride < v.length; cpu++) {
          sum += v.readBigUInt64LE(cpu * stride);
          for (let i = 0; i < 256; i++) bins[i] = (bins[i]! + v.readUInt32LE(cpu * stride + 8 + 4 * i)) >>> 0;
        }
      }
      if (k === 'histogram') {
        const n = this.c.input.size;
        bins[0] = (bins[0]! - (Math.ceil(n / CHUNK) * CHUNK - n)) >>> 0; // the zero padding of the last chunk
        return new Uint8Array(bins.buffer);
      }
      const out = new Uint8Array(8);
      new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, sum), true);
      return out;
    }
    const { at, bytes } = this.flat.out!;
    const out = new Uint8Array(Math.ceil(bytes / CHUNK) * CHUNK);
    for (let i = 0; i * CHUNK < bytes; i++) {
      key.writeUInt32LE(at / CHUNK + i);
      out.set(this.data.lookup(key)!, i * CHUNK);
    }
    return out.subarray(0, bytes);
  }

  protected signalStop(): void {
    Atomics.store(this.ctl, CTL.gen, -1);
    Atomics.notify(this.ctl, CTL.gen);
  }

  /** an idle thread leaves on its own: terminating one inside a koffi call can crash the process */
  protected override stopThread(w: Worker): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => void w.terminate().then(() => resolve()), 2000);
      w.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** stops the threads, then closes the object (programs and maps go); idempotent */
  override async close(): Promise<void> {
    await super.close();
    this.obj.close();
  }
}

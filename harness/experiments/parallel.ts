// Parallel: the data-parallel kernels (reduce, histogram, matmul, spmv) on every substrate — native C
// with pthreads, WASM scalar, WASM SIMD128 (one thread each), WASM threads over a shared memory, eBPF
// with BPF_PROG_RUN per thread — against data size and threads 1…cores and beyond (oversubscribed,
// flagged in params). Every implementation's output is checked against the JS oracle before its
// time counts, on every size, and again after its last timed run.
import os from 'node:os';
import type { Experiment, RunContext } from '../experiment/context.js';
import { FatalMeasurementError } from '../experiment/context.js';
import { positiveInts } from '../experiment/args.js';
import { bpfCapability } from '../bpf/libbpf/capability.js';
import { KERNELS, KERNEL_INFO, type Case, type Kernel, checkSize, firstDifference, fnv1a32, isKernel, makeCase } from '../parallel/kernels.js';
import { runNative } from '../parallel/native.js';
import { WasmSingle } from '../parallel/wasm-single.js';
import { ThreadedInstance } from '../parallel/wasm-threads.js';
import { EbpfParallel } from '../parallel/ebpf.js';
import { SpawnInstance } from '../parallel/thread-spawn.js';
import { shuffle } from '../measure/random.js';
import { drawFigures } from '../figures/draw.js';
import { parallelFigures } from '../figures/parallel.js';
import { parallelReport } from './parallel-report.js';
import { runFanout, FANOUT_FLAGS } from './parallel-fanout.js';

export const PARALLEL_VARIANTS = ['native', 'wasm', 'wasm-simd', 'wasm-threads', 'ebpf'] as const;
type PVariant = (typeof PARALLEL_VARIANTS)[number];

const QUICK_SIZES: Record<Kernel, number[]> = { reduce: [1 << 16, 1 << 20], histogram: [1 << 16, 1 << 20], matmul: [64, 128], spmv: [1 << 12, 1 << 15] };
const FULL_SIZES: Record<Kernel, number[]> = { reduce: [1 << 16, 1 << 20, 1 << 22], histogram: [1 << 16, 1 << 20, 1 << 24], matmul: [64, 256, 512], spmv: [1 << 12, 1 << 16, 1 << 18] };
/** wasm memory cap of the kernels' instances: 1 GiB */
const CAP_PAGES = 16384;

/** "reduce:65536/1048576,matmul:64" → per-kernel sizes (--kernel-sizes: fork.mjs owns --sizes in the suite) */
export function parseSizes(spec: string | undefined, quick: boolean): Record<Kernel, number[]> {
  const out = { ...(quick ? QUICK_SIZES : FULL_SIZES) };
  if (!spec) return out;
  for (const part of spec.split(',')) {
    const [k, list] = part.split(':');
    if (!k || !list || !isKernel(k)) throw new Error(`--kernel-sizes: "${part}" is not kernel:size[/size…] with a kernel of ${KERNELS.join(', ')}`);
    out[k] = list.split('/').map(Number);
    for (const s of out[k]) checkSize(k, s);
  }
  return out;
}

/** thread counts: 1…cores, then 2×cores (oversubscribed); quick: 1, cores, cores+… */
export function defaultThreads(cores: number, quick: boolean): number[] {
  const xs = quick ? [1, cores, 2 * cores] : [...Array.from({ length: cores }, (_, i) => i + 1), 2 * cores, 4 * cores];
  return [...new Set(xs)].sort((a, b) => a - b);
}

export function paramsOf(threads: number, size: number, cores: number): string {
  return `threads=${threads};size=${size}${threads > cores ? ';oversubscribed=true' : ''}`;
}

export const parallel: Experiment = {
  name: 'parallel',
  summary: 'data-parallel kernels (reduce, histogram, matmul, spmv) as native pthreads, WASM scalar, WASM SIMD128, WASM threads over a shared memory and eBPF (BPF_PROG_RUN per thread), against size and threads; speed-up, efficiency, WASM/native ratio; serverless fan-out/fan-in over executor pools',
  notebook: 'parallel.ipynb',
  flags: {
    kernels: { type: 'string', help: `parallel: kernels to run (default all: ${KERNELS.join(', ')})` },
    'kernel-sizes': { type: 'string', help: 'parallel: per-kernel sizes, e.g. "reduce:65536/1048576,matmul:64" (reduce: uint32 elements, histogram: bytes, matmul: n, spmv: rows)' },
    threads: { type: 'string', help: 'parallel: thread counts (default quick 1,cores,2×cores; full 1…cores,2×cores,4×cores); above the cores is flagged oversubscribed' },
    'parallel-variants': { type: 'string', help: `parallel: implementations (default all: ${PARALLEL_VARIANTS.join(', ')})` },
    ...FANOUT_FLAGS,
  },
  async run(ctx) {
    const { args } = ctx;
    const cores = os.availableParallelism();
    const kernels = String(args.extra.kernels ?? KERNELS.join(',')).split(',');
    for (const k of kernels) if (!isKernel(k)) throw new Error(`--kernels: "${k}" is not one of ${KERNELS.join(', ')}`);
    const variants = String(args.extra['parallel-variants'] ?? PARALLEL_VARIANTS.join(',')).split(',') as PVariant[];
    for (const v of variants) if (!PARALLEL_VARIANTS.includes(v)) throw new Error(`--parallel-variants: "${v}" is not one of ${PARALLEL_VARIANTS.join(', ')}`);
    const sizes = parseSizes(args.extra['kernel-sizes'] as string | undefined, args.quick);
    const threads = positiveInts(args, 'threads', defaultThreads(cores, args.quick));
    const reps = ctx.reps(7, 30);
    const warmup = ctx.warmup(1, 3);
    ctx.notes.push(`parallel: ${cores} CPU(s); thread counts ${threads.join(',')}${threads.some((t) => t > cores) ? ` (above ${cores}: oversubscribed, params oversubscribed=true)` : ''}`);
    ctx.notes.push('parallel: WASM threads run a bare wasm32 build (-matomics, --shared-memory) over one shared WebAssembly.Memory, because Debian 12\'s wasi-libc has no wasm32-wasi-threads sysroot (its libpthread.a is an 8-byte stub): no C pthreads path. Two ways: mode warm = the host starts the slices on its worker threads; mode thread-spawn = the module spawns its threads through the host\'s wasi thread-spawn import (served from a pool of pre-started workers, entry wasi_thread_start) and joins them with memory.atomic.wait32');
    ctx.notes.push('parallel: times are one parallel run each, from releasing the threads (already started, input in place) to the last one finishing; native times itself inside its process (pthread barriers), WASM threads and eBPF in this process (Atomics.wait); wasm and wasm-simd are one instance on this thread');
    const bpf = variants.includes('ebpf') ? bpfCapability() : { ok: true as const };
    if (!bpf.ok) ctx.skip('ebpf', '*', 'warm', bpf.reason);
    for (const kernel of kernels as Kernel[]) {
      for (const size of sizes[kernel]) {
        if (ctx.interrupted) return;
        const c = makeCase(kernel, size, args.seed ?? 1);
        process.stderr.write(`parallel: ${kernel} ${size} (${KERNEL_INFO[kernel].size})\n`);
        for (const v of shuffle(variants, ctx.rng)) {
          if (ctx.interrupted) return;
          if (v === 'ebpf' && !bpf.ok) continue;
          const ts = v === 'wasm' || v === 'wasm-simd' ? [1] : threads;
          // wasm-threads twice: host-driven workers (mode warm) and the module spawning its own (mode thread-spawn)
          for (const spawn of v === 'wasm-threads' ? [false, true] : [false]) {
            for (const t of ts) {
              try {
                await measure(ctx, v, c, t, cores, reps, warmup, spawn);
              } catch (e) {
                if (e instanceof FatalMeasurementError) throw e;
                ctx.fail({ variant: v, function: kernel, mode: spawn ? 'thread-spawn' : 'warm', path: 'local', reason: `${paramsOf(t, size, cores)}: ${(e as Error).message}` });
              }
            }
          }
        }
      }
    }
    await runFanout(ctx);
  },
  async figures(data, dir) {
    return drawFigures(parallelFigures(data.summary, os.availableParallelism()), dir);
  },
  report(data, runDir) {
    return parallelReport(data.summary, runDir);
  },
};

function verify(v: string, c: Case, t: number, got: Uint8Array | number): void {
  const ok = typeof got === 'number' ? got === c.wantHash : fnv1a32(got) === c.wantHash;
  if (!ok) {
    const what = typeof got === 'number' ? `FNV-1a ${got.toString(16)}, want ${c.wantHash.toString(16)}` : firstDifference(c.want, got);
    throw new FatalMeasurementError(`${v} ${c.input.kernel} size ${c.input.size} threads ${t}: wrong output (${what})`);
  }
}

async function measure(ctx: RunContext, v: PVariant, c: Case, t: number, cores: number, reps: number, warmup: number, spawn = false): Promise<void> {
  const { kernel, size } = c.input;
  const base = { variant: v, function: kernel, mode: spawn ? 'thread-spawn' : 'warm', path: 'local', metric: 'time', params: paramsOf(t, size, cores), unit: 'us' };
  const record = (ns: number[]) => ctx.record(ns.map((x, i) => ({ ...base, iteration: i, value: x / 1000 })));
  if (v === 'native') {
    const r = await runNative(kernel, size, t, warmup + reps, ctx.args.seed ?? 1, ctx.args.timeoutMs ?? 120_000);
    verify(v, c, t, r.hash);
    return record(r.ns.slice(warmup));
  }
  if (v === 'wasm' || v === 'wasm-simd') {
    const w = new WasmSingle(v === 'wasm' ? 'scalar' : 'simd', c, CAP_PAGES);
    w.run();
    verify(v, c, t, w.output());
    const ns: number[] = [];
    for (let i = 0; i < warmup + reps; i++) ns.push(w.run());
    verify(v, c, t, w.output());
    return record(ns.slice(warmup));
  }
  const inst = v === 'wasm-threads' ? await (spawn ? SpawnInstance.create(c, t, CAP_PAGES) : ThreadedInstance.create(c, t, CAP_PAGES)) : await EbpfParallel.create(c, t, cores);
  try {
    const timeout = ctx.args.timeoutMs ?? 60_000;
    inst.run(timeout);
    verify(v, c, t, inst.output());
    const ns: number[] = [];
    const kernelNs: number[] = [];
    for (let i = 0; i < warmup + reps; i++) {
      ns.push(inst.run(timeout));
      if (inst instanceof EbpfParallel) kernelNs.push(Math.max(...inst.kernelDurations()));
    }
    verify(v, c, t, inst.output());
    record(ns.slice(warmup));
    // the kernel's own BPF_PROG_RUN time of the slowest thread: the run without the thread hand-off
    if (kernelNs.length) ctx.record(kernelNs.slice(warmup).map((x, i) => ({ ...base, metric: 'bpf_run_time', iteration: i, value: x / 1000 })));
  } finally {
    await inst.close();
  }
}

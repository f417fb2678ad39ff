// Where a kernel's arrays, per-thread partials and output sit in a wasm linear memory, which export
// each thread calls with which arguments, and how the partials are reduced to the output bytes.
import { type Kernel, type KernelInput, share } from './kernels.js';

export interface Layout {
  kernel: Kernel;
  size: number;
  threads: number;
  /** byte offset of each input array */
  ptr: Record<string, number>;
  /** per thread: its partial (reduce: a uint64; histogram: 256 uint32), 0 when none */
  partial: number[];
  /** the output array (matmul C, spmv y), or none */
  out: { at: number; bytes: number } | null;
  /** one past the last byte used */
  end: number;
}

const PARTIAL_BYTES: Record<Kernel, number> = { reduce: 8, histogram: 1024, matmul: 0, spmv: 0 };
const align = (n: number, a = 64) => Math.ceil(n / a) * a;

export function layout(input: KernelInput, threads: number, base: number): Layout {
  let at = align(base);
  const ptr: Record<string, number> = {};
  for (const [name, arr] of Object.entries(input.arrays)) {
    ptr[name] = at;
    at = align(at + arr.byteLength);
  }
  const partial: number[] = [];
  for (let t = 0; t < threads; t++) {
    partial.push(PARTIAL_BYTES[input.kernel] ? at : 0);
    at = align(at + PARTIAL_BYTES[input.kernel]);
  }
  let out: Layout['out'] = null;
  const outBytes = input.kernel === 'matmul' ? input.size * input.size * 4 : input.kernel === 'spmv' ? input.size * 4 : 0;
  if (outBytes) {
    out = { at, bytes: outBytes };
    at = align(at + outBytes);
  }
  return { kernel: input.kernel, size: input.size, threads, ptr, partial, out, end: at };
}

export function writeInputs(mem: Uint8Array, input: KernelInput, l: Layout): void {
  for (const [name, arr] of Object.entries(input.arrays)) mem.set(new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength), l.ptr[name]!);
}

/** zeroes the partials and the output, so a run that skipped its work cannot pass for the last run's */
export function clearOutputs(mem: Uint8Array, l: Layout): void {
  for (const p of l.partial) if (p) mem.fill(0, p, p + PARTIAL_BYTES[l.kernel]);
  if (l.out) mem.fill(0, l.out.at, l.out.at + l.out.bytes);
}

/** the export thread t calls and its arguments */
export function call(l: Layout, t: number): { fn: string; args: number[] } {
  const [lo, hi] = share(l.size, l.threads, t);
  const p = l.ptr;
  switch (l.kernel) {
    case 'reduce': return { fn: 'k_reduce', args: [p.a!, lo, hi, l.partial[t]!] };
    case 'histogram': return { fn: 'k_histogram', args: [p.b!, lo, hi, l.partial[t]!] };
    case 'matmul': return { fn: 'k_matmul', args: [p.A!, p.B!, l.out!.at, l.size, lo, hi] };
    case 'spmv': return { fn: 'k_spmv', args: [p.rp!, p.col!, p.val!, p.x!, l.out!.at, lo, hi] };
  }
}

/** the output bytes, the partials reduced in thread order */
export function collect(mem: Uint8Array, l: Layout): Uint8Array {
  const dv = new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
  if (l.kernel === 'reduce') {
    let s = 0n;
    for (const p of l.partial) s += dv.getBigUint64(p, true);
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, s), true);
    return out;
  }
  if (l.kernel === 'histogram') {
    const bins = new Uint32Array(256);
    for (const p of l.partial) for (let i = 0; i < 256; i++) bins[i] = (bins[i]! + dv.getUint32(p + 4 * i, true)) >>> 0;
    return new Uint8Array(bins.buffer);
  }
  return mem.slice(l.out!.at, l.out!.at + l.out!.bytes);
}

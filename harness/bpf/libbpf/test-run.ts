// BPF_PROG_RUN: running a program on given input.
import koffi from 'koffi';
import { L, check } from './ffi.js';

export interface TestRunInput {
  /** packet (XDP/SCHED_CLS/SOCKET_FILTER) or other input data */
  dataIn: Uint8Array;
  /** optional context (e.g. struct xdp_md, struct __sk_buff) */
  ctxIn?: Uint8Array;
  /** room for data_out (default dataIn.length + 256, enough for XDP tail growth) */
  dataOutSize?: number;
  /** repetitions inside the kernel; durationNs is the average per repetition (default 1) */
  repeat?: number;
  flags?: number;
}

export interface TestRunResult {
  retval: number;
  /** a copy of the packet after the run */
  dataOut: Buffer;
  /** kernel-measured average duration of one run, ns */
  durationNs: number;
  ctxOut?: Buffer;
}

// struct bpf_test_run_opts (libbpf 1.1, 80 bytes): field offsets
const TR = { sz: 0, dataIn: 8, dataOut: 16, sizeIn: 24, sizeOut: 28, ctxIn: 32, ctxOut: 40, ctxSizeIn: 48, ctxSizeOut: 52, retval: 56, repeat: 60, duration: 64, flags: 68, cpu: 72, batch: 76 } as const;
const TR_SIZE = 80;

/**
 * BPF_PROG_RUN through bpf_prog_test_run_opts with the opts struct and the buffers in native memory
 * allocated once (koffi.alloc): a call costs one copy in, one copy out and the syscall. Marshalling a
 * JS object into the struct on every call instead costs ~4 µs more here.
 */
export class TestRunner {
  private mem: unknown;
  private view: Buffer;
  private readonly base: bigint;
  private freed = false;

  /** room for `maxData` bytes of data in and out, and `maxCtx` bytes of context in and out */
  constructor(
    readonly maxData = 64 * 1024,
    readonly maxCtx = 256,
  ) {
    L();
    const total = TR_SIZE + 2 * maxData + 2 * maxCtx;
    this.mem = koffi.alloc('uint8_t', total);
    this.base = koffi.address(this.mem);
    this.view = Buffer.from(koffi.view(this.mem, total));
  }

  run(progFd: number, input: TestRunInput): TestRunResult {
    if (this.freed) throw new Error('TestRunner is freed');
    const v = this.view;
    const n = input.dataIn.byteLength;
    const outSize = input.dataOutSize ?? n + 256;
    const ctxN = input.ctxIn?.byteLength ?? 0;
    if (n > this.maxData || outSize > this.maxData) throw new RangeError(`test run data of ${Math.max(n, outSize)} bytes > ${this.maxData} (TestRunner maxData)`);
    if (ctxN > this.maxCtx) throw new RangeError(`test run ctx of ${ctxN} bytes > ${this.maxCtx} (TestRunner maxCtx)`);
    const dIn = TR_SIZE, dOut = dIn + this.maxData, cIn = dOut + this.maxData, cOut = cIn + this.maxCtx;
    v.fill(0, 0, TR_SIZE);
    v.writeBigUInt64LE(BigInt(TR_SIZE), TR.sz);
    v.writeBigUInt64LE(this.base + BigInt(dIn), TR.dataIn);
    v.writeBigUInt64LE(this.base + BigInt(dOut), TR.dataOut);
    v.writeUInt32LE(n, TR.sizeIn);
    v.writeUInt32LE(outSize, TR.sizeOut);
    v.set(input.dataIn, dIn);
    if (input.ctxIn) {
      v.writeBigUInt64LE(this.base + BigInt(cIn), TR.ctxIn);
      v.writeBigUInt64LE(this.base + BigInt(cOut), TR.ctxOut);
      v.writeUInt32LE(ctxN, TR.ctxSizeIn);
      v.writeUInt32LE(ctxN, TR.ctxSizeOut);
      v.set(input.ctxIn, cIn);
    }
    v.writeInt32LE(input.repeat ?? 1, TR.repeat);
    v.writeUInt32LE(input.flags ?? 0, TR.flags);
    check(`bpf_prog_test_run_opts fd ${progFd}`, L().bpf_prog_test_run_opts(progFd, this.mem));
    const outN = Math.min(v.readUInt32LE(TR.sizeOut), outSize);
    const r: TestRunResult = {
      retval: v.readUInt32LE(TR.retval),
      dataOut: Buffer.from(v.subarray(dOut, dOut + outN)),
      durationNs: v.readUInt32LE(TR.duration),
    };
    if (input.ctxIn) r.ctxOut = Buffer.from(v.subarray(cOut, cOut + Math.min(v.readUInt32LE(TR.ctxSizeOut), ctxN)));
    return r;
  }

  /** Releases the native memory (not a kernel resource). Idempotent. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.view = Buffer.alloc(0);
    koffi.free(this.mem);
  }
}

let sharedRunner: TestRunner | null = null;

/** BPF_PROG_RUN (bpf_prog_test_run_opts) of a loaded program, through a shared TestRunner. */
export function progTestRun(progFd: number, input: TestRunInput): TestRunResult {
  const need = Math.max(input.dataIn.byteLength, input.dataOutSize ?? input.dataIn.byteLength + 256);
  const needCtx = input.ctxIn?.byteLength ?? 0;
  if (!sharedRunner || sharedRunner.maxData < need || sharedRunner.maxCtx < needCtx) {
    const old = sharedRunner;
    sharedRunner = new TestRunner(Math.max(need, old?.maxData ?? 64 * 1024), Math.max(needCtx, old?.maxCtx ?? 256));
    old?.free();
  }
  return sharedRunner.run(progFd, input);
}


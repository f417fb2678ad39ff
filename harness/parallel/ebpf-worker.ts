// One thread of EbpfParallel: pinned to its CPU, it runs BPF_PROG_RUN with its job packet each time
// the generation counter moves, and records the kernel's own duration of the run.
import koffi from 'koffi';
import { parentPort, workerData } from 'node:worker_threads';
import { LIBBPF_SONAME } from '../bpf/libbpf/consts.js';
import { C } from '../platform/libc.js';
import { CTL, JOB_BYTES, JOB_STRIDE, reportSlotError, type EbpfThreadInit } from './wasm-threads-shared.js';

const init = workerData as EbpfThreadInit;
const ctl = new Int32Array(init.control);
const errors = new Uint8Array(init.errors);
const job = new Uint8Array(init.jobs, init.index * JOB_STRIDE, JOB_BYTES);
const duration = new DataView(init.jobs, init.index * JOB_STRIDE + JOB_BYTES, 8);

const mask = Buffer.alloc(128);
mask[init.cpu >> 3] = 1 << (init.cpu & 7);
// pid 0: this thread only
if (C().sched_setaffinity(0, mask.length, mask) !== 0) throw new Error(`sched_setaffinity to CPU ${init.cpu} failed`);
// bpf_prog_test_run_opts called directly, not through libbpf.ts: that one installs libbpf's print
// callback, which dies with this thread and crashed the process at libbpf's next message
const testRun = koffi.load(LIBBPF_SONAME).func('int bpf_prog_test_run_opts(int fd, uint8_t *opts)');
// struct bpf_test_run_opts (libbpf 1.1, 80 bytes), as in libbpf/test-run.ts
const opts = Buffer.alloc(80);
const dataIn = Buffer.alloc(JOB_BYTES);
const dataOut = Buffer.alloc(JOB_BYTES);
function runOnce(): { retval: number; durationNs: number } {
  opts.fill(0);
  opts.writeBigUInt64LE(80n, 0);
  opts.writeBigUInt64LE(BigInt(koffi.address(dataIn)), 8);
  opts.writeBigUInt64LE(BigInt(koffi.address(dataOut)), 16);
  opts.writeUInt32LE(JOB_BYTES, 24);
  opts.writeUInt32LE(JOB_BYTES, 28);
  opts.writeInt32LE(1, 60);
  const rc = testRun(init.progFd, opts) as number;
  if (rc < 0) throw new Error(`bpf_prog_test_run_opts: ${-rc}`);
  return { retval: opts.readUInt32LE(56), durationNs: opts.readUInt32LE(64) };
}

parentPort!.postMessage('ready');
let gen = 0;
for (;;) {
  Atomics.wait(ctl, CTL.gen, gen);
  gen = Atomics.load(ctl, CTL.gen);
  if (gen < 0) break;
  try {
    dataIn.set(job);
    const r = runOnce();
    duration.setFloat64(0, r.durationNs, true);
    if (r.retval !== 2 /* XDP_PASS */) throw new Error(`the program returned ${r.retval}, not XDP_PASS (bad job or a missing map entry)`);
  } catch (e) {
    reportSlotError(errors, ctl, init.index, (e as Error).message);
  }
  if (Atomics.sub(ctl, CTL.remaining, 1) === 1) Atomics.notify(ctl, CTL.remaining);
}

// A pooled thread of SpawnInstance: its own instance of the spawn build over the shared memory; when
// the host's thread-spawn hands it (tid, arg) it enters wasi_thread_start(tid, arg), the wasi-threads
// entry point. A trap is reported, and the join counter the module waits on is forced to 0 so that
// the spawning thread wakes up.
import { parentPort, workerData } from 'node:worker_threads';
import { CTL, SPAWN_SLOT, reportSlotError, type SpawnThreadInit } from './wasm-threads-shared.js';

const init = workerData as SpawnThreadInit;
const ctl = new Int32Array(init.control);
const errors = new Uint8Array(init.errors);
const mem32 = new Int32Array(init.memory.buffer);
// a spawned thread spawning again is not served (the kernels never do)
const inst = new WebAssembly.Instance(init.module, { env: { memory: init.memory }, wasi: { 'thread-spawn': () => -1 } });
if (init.stackGlobal) (inst.exports[init.stackGlobal] as WebAssembly.Global).value = init.stackTop;
const start = inst.exports.wasi_thread_start as (tid: number, arg: number) => void;
const slot = CTL.slots + init.index * SPAWN_SLOT.size;

parentPort!.postMessage('ready');
let gen = 0;
for (;;) {
  Atomics.wait(ctl, slot + SPAWN_SLOT.gen, gen);
  gen = Atomics.load(ctl, slot + SPAWN_SLOT.gen);
  if (gen < 0) break;
  const arg = ctl[slot + SPAWN_SLOT.arg]!;
  try {
    start(ctl[slot + SPAWN_SLOT.tid]!, arg);
  } catch (e) {
    reportSlotError(errors, ctl, init.index, `${(e as Error).name}: ${(e as Error).message}`);
    const left = mem32[(arg >>> 2) + 8]! >>> 2; // struct job: fn, a[7], then the counter's address
    Atomics.store(mem32, left, 0);
    Atomics.notify(mem32, left);
  }
  Atomics.store(ctl, slot + SPAWN_SLOT.busy, 0);
  Atomics.notify(ctl, slot + SPAWN_SLOT.busy);
}

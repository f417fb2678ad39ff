// One thread of a ThreadedInstance: an instance of the threads build over the shared memory, with a
// stack of its own, that runs the job in its slot each time the generation counter moves.
import { parentPort, workerData } from 'node:worker_threads';
import { CTL, FN_NAMES, SLOT, reportSlotError, type ThreadInit } from './wasm-threads-shared.js';

const init = workerData as ThreadInit;
const ctl = new Int32Array(init.control);
const errors = new Uint8Array(init.errors);
const inst = new WebAssembly.Instance(init.module, { env: { memory: init.memory } });
if (init.stackGlobal) (inst.exports[init.stackGlobal] as WebAssembly.Global).value = init.stackTop;
const fns = FN_NAMES.map((n) => inst.exports[n] as (...a: number[]) => void);
const slot = CTL.slots + init.index * SLOT.size;

parentPort!.postMessage('ready');
let gen = 0;
for (;;) {
  Atomics.wait(ctl, CTL.gen, gen);
  gen = Atomics.load(ctl, CTL.gen);
  if (gen < 0) break;
  try {
    const n = ctl[slot + SLOT.nargs]!;
    const args: number[] = [];
    for (let i = 0; i < n; i++) args.push(ctl[slot + SLOT.args + i]! >>> 0);
    fns[ctl[slot + SLOT.fn]!]!(...args);
  } catch (e) {
    reportSlotError(errors, ctl, init.index, `${(e as Error).name}: ${(e as Error).message}`);
  }
  if (Atomics.sub(ctl, CTL.remaining, 1) === 1) Atomics.notify(ctl, CTL.remaining);
}

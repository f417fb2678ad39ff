// The control block a ThreadedInstance (or EbpfParallel) and its threads share (Int32Array indices).
export const FN_NAMES = ['k_reduce', 'k_histogram', 'k_matmul', 'k_spmv'] as const;
export const CTL = { gen: 0, remaining: 1, failed: 2, slots: 8 } as const;
export const SLOT = { fn: 0, nargs: 1, args: 2, size: 12 } as const;
export const ERROR_BYTES = 512;

/** the message a thread left in its slot of the errors buffer (NUL-terminated) */
export function slotError(errors: Uint8Array, slot: number): string {
  const raw = errors.subarray(slot * ERROR_BYTES, (slot + 1) * ERROR_BYTES);
  const end = raw.indexOf(0);
  return Buffer.from(raw.subarray(0, end < 0 ? raw.length : end)).toString();
}

/** a thread's side of slotError: leaves `message` in its slot and marks the run failed (the first failure wins) */
export function reportSlotError(errors: Uint8Array, ctl: Int32Array, slot: number, message: string): void {
  errors.set(Buffer.from(message.slice(0, ERROR_BYTES - 1)), slot * ERROR_BYTES);
  Atomics.compareExchange(ctl, CTL.failed, 0, slot + 1);
}

export interface ThreadInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  errors: SharedArrayBuffer;
  index: number;
  stackGlobal: string | null;
  stackTop: number;
}

export interface EbpfThreadInit {
  progFd: number;
  cpu: number;
  index: number;
  control: SharedArrayBuffer;
  errors: SharedArrayBuffer;
  /** per thread: 64 job bytes, then the kernel's duration (float64 ns) */
  jobs: SharedArrayBuffer;
}
export const JOB_BYTES = 64;
export const JOB_STRIDE = 72;

/** per pooled thread of a SpawnInstance (Int32Array indices from its slot) */
export const SPAWN_SLOT = { gen: 0, busy: 1, tid: 2, arg: 3, size: 4 } as const;

/** a pooled thread of a SpawnInstance starts as a ThreadedInstance's does */
export type SpawnThreadInit = ThreadInit;

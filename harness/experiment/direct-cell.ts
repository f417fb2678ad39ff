// The direct path of one cell: `warmup` + `reps` calls of the variant from the measuring process,
// timed by tinybench around invoke() alone; each output is verified after the clock stops.
//
// A variant that polices its own timeouts (native, container, ebpf: the function runs in another
// process or in the kernel, bounded) is called on this thread. One that runs the function in the
// caller's thread (WASM) is called from a worker thread: a looping function cannot be interrupted
// on the thread it runs on (a signal handler is JavaScript too), but a worker can be terminated.
// The worker reports the start of the call in flight through shared memory, outside the timed
// region; this thread terminates it when a call overruns --timeout-ms or the run is interrupted.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { FunctionEntry } from '../functions/types.js';
import { benchInProcess } from '../measure/bench.js';
import { InvokeError, type Mode, type Variant, type VariantOptions } from '../platform/variant.js';
import { FatalMeasurementError } from './context.js';
import { checkOutput, WrongOutput } from './measure-call.js';
import { killProcessesNaming } from '../platform/proc-sweep.js';
import type { DirectAnswer, DirectJob } from './direct-worker.js';

export interface DirectCellSpec {
  variant: Variant;
  /** how to create the same variant in a worker */
  options: VariantOptions;
  fn: FunctionEntry;
  mode: Mode;
  input: Uint8Array;
  warmup: number;
  reps: number;
  timeoutMs: number;
  /** polled while a worker runs: true stops it (Ctrl-C) */
  stopped: () => boolean;
}

/** Thrown when the run was interrupted while the cell ran: not the cell's fault. */
export class CellInterrupted extends Error {
  override name = 'CellInterrupted';
}

/** a worker gets this long past --timeout-ms before it is terminated (its clock is Date.now) */
const WATCHDOG_GRACE_MS = 100;
const POLL_MS = 20;
/** creating the worker and loading the catalog, before its first call */
const START_MS = 30_000;

/** Samples in ns, in run order. Rejects with InvokeError (the cell failed), FatalMeasurementError
 *  (a wrong output), or CellInterrupted. */
export async function measureDirectCell(s: DirectCellSpec): Promise<number[]> {
  if (s.variant.enforcesTimeouts) return inThread(s);
  return inWorker(s);
}

async function inThread(s: DirectCellSpec): Promise<number[]> {
  const where = `${s.variant.name}/${s.mode}`;
  try {
    const r = await benchInProcess({
      name: `${s.variant.name}/${s.fn.name}/${s.mode}`,
      fn: () => s.variant.invoke(s.fn, s.mode, s.input, { timeoutMs: s.timeoutMs }),
      verify: (inv) => checkOutput(s.fn, s.input, inv.output, where),
      warmup: s.warmup,
      iterations: s.reps,
      async: true,
    });
    return r.samplesNs;
  } catch (e) {
    throw unwrap(e);
  }
}

function unwrap(e: unknown): Error {
  let c: unknown = e;
  while (c instanceof Error && !(c instanceof InvokeError) && !(c instanceof WrongOutput) && c.cause) c = c.cause;
  if (c instanceof WrongOutput) return new FatalMeasurementError(c.message);
  if (c instanceof InvokeError) return c;
  return e as Error;
}

const workerFile = path.join(path.dirname(fileURLToPath(import.meta.url)), 'direct-worker.js');

function inWorker(s: DirectCellSpec): Promise<number[]> {
  const inFlight = new SharedArrayBuffer(8);
  const started = new Float64Array(inFlight);
  const job: DirectJob = {
    variant: s.variant.name, options: s.options, fn: s.fn.name, mode: s.mode, input: s.input,
    warmup: s.warmup, reps: s.reps, timeoutMs: s.timeoutMs, inFlight,
  };
  const worker = new Worker(workerFile, { workerData: job });
  const born = Date.now();
  return new Promise<number[]>((resolve, reject) => {
    let settled = false;
    let called = false;
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      clearInterval(watch);
      f();
    };
    const stop = (err: Error) => settle(() => {
      // what the worker started (a cold-process child) names its variant's scratch folder: with
      // the worker gone, nobody else would kill it
      void worker.terminate().finally(() => killProcessesNaming(s.options.workDir));
      reject(err);
    });
    const watch = setInterval(() => {
      const t = started[0]!;
      const now = Date.now();
      if (s.stopped()) stop(new CellInterrupted(`${s.variant.name}/${s.fn.name}/${s.mode}: interrupted`));
      else if (t > 0 && now - t > s.timeoutMs + WATCHDOG_GRACE_MS) {
        stop(new InvokeError('timeout', `${s.fn.name} on ${s.variant.name}/${s.mode} did not finish within ${s.timeoutMs} ms; its worker thread was terminated`));
      } else if (t === 0 && now - born > START_MS && !called) {
        stop(new Error(`the worker for ${s.variant.name}/${s.fn.name} did not start its first call within ${START_MS / 1000} s`));
      }
      if (t > 0) called = true;
    }, POLL_MS);
    worker.once('message', (a: DirectAnswer) => settle(() => {
      void worker.terminate();
      if (a.ok) resolve(a.samplesNs);
      else if (a.kind === 'invoke') reject(new InvokeError(a.invokeKind, a.message));
      else if (a.kind === 'wrong-output') reject(new FatalMeasurementError(a.message));
      else reject(new Error(a.message));
    }));
    worker.once('error', (e) => settle(() => reject(e)));
    worker.once('exit', (code) => settle(() => reject(new Error(`the worker for ${s.variant.name}/${s.fn.name} exited (${code}) without an answer`))));
  });
}

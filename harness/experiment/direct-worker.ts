// Worker thread of a direct cell whose variant runs functions in the caller's thread (WASM): the
// calls are made and timed here, so the run's main thread stays free to stop a looping function
// (worker.terminate) and to answer Ctrl-C. Only invoke() is timed; the output check runs after
// the clock stops (benchInProcess's verify hook). See direct-cell.ts for the other side.
import { parentPort, workerData } from 'node:worker_threads';
import { loadCatalog } from '../functions/catalog.js';
import { benchInProcess } from '../measure/bench.js';
import { loadVariantPlugins } from '../platform/registry.js';
import { InvokeError, type Mode, type VariantOptions } from '../platform/variant.js';
import { checkOutput, WrongOutput } from './measure-call.js';

export interface DirectJob {
  variant: string;
  options: VariantOptions;
  fn: string;
  mode: Mode;
  input: Uint8Array;
  warmup: number;
  reps: number;
  timeoutMs: number;
  /** Float64Array(1): Date.now() when the call in flight started, 0 between calls */
  inFlight: SharedArrayBuffer;
}

export type DirectAnswer =
  | { ok: true; samplesNs: number[] }
  | { ok: false; kind: 'invoke'; invokeKind: InvokeError['kind']; message: string }
  | { ok: false; kind: 'wrong-output' | 'error'; message: string };

async function main(job: DirectJob): Promise<DirectAnswer> {
  const catalog = await loadCatalog();
  const fn = catalog.get(job.fn);
  const plugin = (await loadVariantPlugins()).get(job.variant);
  if (!plugin) return { ok: false, kind: 'error', message: `no variant plug-in named ${job.variant}` };
  const variant = plugin.create(job.options);
  const started = new Float64Array(job.inFlight);
  try {
    const r = await benchInProcess({
      name: `${job.variant}/${job.fn}/${job.mode}`,
      fn: () => variant.invoke(fn, job.mode, job.input, { timeoutMs: job.timeoutMs }),
      verify: (inv) => checkOutput(fn, job.input, inv.output, `${job.variant}/${job.mode}`),
      warmup: job.warmup,
      iterations: job.reps,
      async: true,
      beforeCall: () => void (started[0] = Date.now()),
      afterCall: () => void (started[0] = 0),
    });
    return { ok: true, samplesNs: r.samplesNs };
  } catch (e) {
    // benchInProcess wraps what the call or the check threw
    let cause: unknown = e;
    while (cause instanceof Error && !(cause instanceof InvokeError) && !(cause instanceof WrongOutput) && cause.cause) cause = cause.cause;
    if (cause instanceof InvokeError) return { ok: false, kind: 'invoke', invokeKind: cause.kind, message: cause.message };
    if (cause instanceof WrongOutput) return { ok: false, kind: 'wrong-output', message: cause.message };
    return { ok: false, kind: 'error', message: (e as Error).message };
  } finally {
    await variant.teardown().catch(() => {});
  }
}

if (parentPort) {
  const port = parentPort;
  main(workerData as DirectJob).then(
    (a) => port.postMessage(a),
    (e: Error) => port.postMessage({ ok: false, kind: 'error', message: e.message } satisfies DirectAnswer),
  );
}

// In-process measurement: a thin wrapper over tinybench (v6) that keeps every sample in ns,
// in run order, and verifies every result outside the timed region.
//
// How it uses tinybench (checked against node_modules/tinybench/dist/index.js, v6.2.4):
// - The task function times the user's fn itself with process.hrtime.bigint() and returns
//   { overriddenDuration } in ms, so tinybench's statistics use the same numbers we return.
//   Our own array keeps run order; tinybench sorts its retained samples in place.
// - The result is stashed and checked in the task's `afterEach` hook, which tinybench calls
//   after the sample is recorded (outside the t0..t1 window), in warmup and in run phases.
// - A throw from `verify` or `fn` makes tinybench record the task as errored; with
//   `throws: true` it rethrows, and we also check the final state, so benchInProcess rejects.
import { Bench, type BenchOptions, type FnOptions } from 'tinybench';

export interface BenchSpec<T> {
  name: string;
  fn: () => Promise<T> | T;
  /** throws when a result is wrong; runs on every result (warmup too), never timed */
  verify: (result: T) => void;
  /** warmup iterations, not recorded (0 = none) */
  warmup: number;
  /** measured iterations (exactly this many when `time` is 0/absent, else at least this many) */
  iterations: number;
  /** optional time budget in ms: keep sampling until both `iterations` and `time` are reached */
  time?: number;
  /** whether fn returns a promise; default: detected with one extra verified call before warmup */
  async?: boolean;
  /** called just before each timed call starts and just after it ends, outside the timed region
   *  (a watchdog in another thread uses them to see a call in flight) */
  beforeCall?: () => void;
  afterCall?: () => void;
}

export interface BenchResult {
  name: string;
  /** one per measured iteration, in run order, ns */
  samplesNs: number[];
  /** verified results, warmup + measured (+1 for async detection) */
  verified: number;
  /** tinybench's own latency summary (ms) for cross-checking */
  tinybench: { mean: number; p50: number; samplesCount: number };
}


function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

export async function benchInProcess<T>(spec: BenchSpec<T>): Promise<BenchResult> {
  if (!(spec.iterations >= 1)) throw new Error(`benchInProcess(${spec.name}): iterations must be ≥ 1`);
  let verified = 0;
  const check = (result: T): void => {
    try {
      spec.verify(result);
    } catch (err) {
      throw new Error(`benchInProcess(${spec.name}): verification failed: ${(err as Error)?.message ?? String(err)}`, {
        cause: err,
      });
    }
    verified++;
  };

  let isAsync = spec.async;
  if (isAsync === undefined) {
    spec.beforeCall?.();
    const probe = spec.fn();
    isAsync = isThenable(probe);
    const first = await probe;
    spec.afterCall?.();
    check(first);
  }

  const samplesNs: number[] = [];
  let phase: 'warmup' | 'run' = 'warmup';
  let pending: { result: T } | undefined;

  const record = (t0: bigint, t1: bigint, result: T): { overriddenDuration: number } => {
    const ns = Number(t1 - t0);
    if (phase === 'run') samplesNs.push(ns);
    pending = { result };
    return { overriddenDuration: ns / 1e6 };
  };
  const before = spec.beforeCall ?? (() => {});
  const after = spec.afterCall ?? (() => {});
  const task = isAsync
    ? async () => {
        before();
        const t0 = process.hrtime.bigint();
        const result = await spec.fn();
        const t1 = process.hrtime.bigint();
        after();
        return record(t0, t1, result);
      }
    : () => {
        before();
        const t0 = process.hrtime.bigint();
        const result = spec.fn() as T;
        const t1 = process.hrtime.bigint();
        after();
        return record(t0, t1, result);
      };

  const hooks: FnOptions = {
    async: isAsync,
    beforeEach(mode) {
      phase = mode === 'run' ? 'run' : 'warmup';
      pending = undefined;
    },
    afterEach() {
      const p = pending;
      pending = undefined;
      // fn threw: tinybench already holds that error; nothing to verify.
      if (p) check(p.result);
    },
  };

  const options: BenchOptions = {
    retainSamples: true,
    throws: true,
    iterations: spec.iterations,
    time: spec.time ?? 0,
    warmup: spec.warmup > 0,
    warmupIterations: Math.max(0, spec.warmup),
    warmupTime: 0,
  };
  const bench = new Bench(options);
  bench.add(spec.name, task, hooks);
  await bench.run();
  const t = bench.getTask(spec.name);
  const r = t?.result;
  if (!r || r.state !== 'completed') {
    const err = r && r.state === 'errored' ? r.error : undefined;
    throw new Error(`benchInProcess(${spec.name}): task ended in state ${r?.state ?? 'missing'}`, { cause: err });
  }
  if (r.latency.samplesCount !== samplesNs.length) {
    throw new Error(
      `benchInProcess(${spec.name}): tinybench recorded ${r.latency.samplesCount} samples, wrapper ${samplesNs.length}`,
    );
  }
  return {
    name: spec.name,
    samplesNs,
    verified,
    tinybench: { mean: r.latency.mean, p50: r.latency.p50, samplesCount: r.latency.samplesCount },
  };
}

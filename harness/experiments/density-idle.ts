// Density, one variant × function cell: N = 1 … k idle instances started one at a time in a memory
// cgroup of their own (the cell), the cell's memory read after each; then a budget really tried.
// Memory of the side = the cell's cgroup usage (kernel memory included) and, as a second view, PSS/RSS
// summed over the processes in it. A variant whose instances share a process (WASM: the executor) pays
// that process once, so (fixed + N × marginal) / N falls with N; one process per instance does not.
// A variant whose instances are a daemon's containers cannot put them in the cell (they are not our
// children, and the daemon and its shims serve every cell); it reports the side's memory itself
// (IdleInstances.memory: the daemon once + each container with its shim), which is read instead, and a
// budget is then checked against that reading after each start, as no kernel limit binds the side.
import type { FunctionEntry } from '../functions/types.js';
import { verifyOutput } from '../functions/verify.js';
import { MemoryCgroup } from '../platform/memory-cgroup.js';
import { readProcessMemory } from '../platform/proc-memory.js';
import { InvokeError, type IdleInstances, type Variant } from '../platform/variant.js';
import { FatalMeasurementError } from '../experiment/context.js';

export interface IdleStep {
  n: number;
  /** the cell's cgroup usage */
  cgroupBytes: number;
  /** the kernel's part of it, where the kernel says */
  cgroupKernelBytes?: number;
  /** summed over the processes in the cell (0 processes: undefined) */
  pssBytes?: number;
  rssBytes?: number;
  processes: number;
  /** memory outside any process (eBPF memlock) */
  kernelMemoryBytes?: number;
  /** the part of cgroupBytes every instance shares (a daemon), when the variant reports its own memory */
  sharedBytes?: number;
}

export interface IdleSequence {
  steps: IdleStep[];
  method: string;
  /** the file the cgroup usage was read from */
  usageFile: string;
  kernelMethod?: string;
  /** set when the variant reported the side's memory itself (IdleInstances.memory): how, and what is shared */
  selfReported?: { method: string; sharedLabel: string };
}

export interface CellOptions {
  timeoutMs: number;
  input: Uint8Array;
}

/** extra time past a step's own timeout before the harness stops waiting for the variant */
const BACKSTOP_MS = 5000;

async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new InvokeError('timeout', `${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(t);
  }
}

function verified(variant: Variant, fn: FunctionEntry, input: Uint8Array, output: Uint8Array): void {
  try {
    verifyOutput(fn, input, output);
  } catch (e) {
    throw new FatalMeasurementError(`wrong output from an idle ${variant.name} instance: ${(e as Error).message}`);
  }
}

/** PSS/RSS summed over `pids`; a process that left between listing and reading counts nothing. */
function sumMemory(pids: number[]): { pss: number; rss: number; n: number } {
  let pss = 0;
  let rss = 0;
  let n = 0;
  for (const p of pids) {
    try {
      const m = readProcessMemory(p);
      pss += m.pssBytes;
      rss += m.rssBytes;
      n++;
    } catch {
      /* gone */
    }
  }
  return { pss, rss, n };
}

/** Runs `body` with the variant's idle instances in a new cell cgroup; both are removed on every path. */
async function inCell<T>(
  variant: Variant,
  fn: FunctionEntry,
  o: CellOptions & { limitBytes?: number; prefix: string },
  body: (inst: IdleInstances, cg: MemoryCgroup) => Promise<T>,
  onStartFailure?: (e: Error, cg: MemoryCgroup) => T,
): Promise<T> {
  if (!variant.startIdle) throw new InvokeError('unavailable', `${variant.name} cannot start idle instances (no startIdle)`);
  const cg = MemoryCgroup.create(o.prefix, o.limitBytes);
  let inst: IdleInstances | undefined;
  try {
    try {
      inst = await bounded(variant.startIdle(fn, { placement: cg, timeoutMs: o.timeoutMs }), o.timeoutMs + BACKSTOP_MS, `${variant.name} startIdle`);
    } catch (e) {
      if (onStartFailure && !(e instanceof FatalMeasurementError)) return onStartFailure(e as Error, cg);
      throw e;
    }
    return await body(inst, cg);
  } finally {
    try {
      if (inst) await bounded(inst.close(), o.timeoutMs + BACKSTOP_MS, `${variant.name} close`);
    } finally {
      cg.remove();
    }
  }
}

/** N = 1 … k instances, one at a time, the cell read after each (none limited). */
export async function idleSequence(variant: Variant, fn: FunctionEntry, k: number, o: CellOptions): Promise<IdleSequence> {
  return inCell(variant, fn, { ...o, prefix: 'density' }, async (inst, cg) => {
    const steps: IdleStep[] = [];
    let kernelMethod: string | undefined;
    let own: IdleSequence['selfReported'];
    for (let n = 1; n <= k; n++) {
      const out = await bounded(inst.add(o.input), o.timeoutMs + BACKSTOP_MS, `${variant.name} instance #${n}`);
      verified(variant, fn, o.input, out);
      const alive = await inst.alive();
      if (alive < n) throw new InvokeError('function-error', `${variant.name}/${fn.name}: only ${alive} of ${n} idle instances alive`);
      const km = inst.kernelMemory?.();
      kernelMethod = km?.method;
      if (inst.memory) {
        const m = await bounded(inst.memory(), o.timeoutMs, `${variant.name} memory`);
        own = { method: m.method, sharedLabel: m.shared.label };
        steps.push({
          n,
          cgroupBytes: m.bytes,
          ...(m.kernelBytes !== undefined ? { cgroupKernelBytes: m.kernelBytes } : {}),
          pssBytes: m.pssBytes,
          rssBytes: m.rssBytes,
          processes: m.processes,
          sharedBytes: m.shared.bytes,
          ...(km ? { kernelMemoryBytes: km.bytes } : {}),
        });
        continue;
      }
      const procs = sumMemory(cg.pids());
      steps.push({
        n,
        cgroupBytes: cg.usageBytes(),
        ...(cg.kernelBytes() !== undefined ? { cgroupKernelBytes: cg.kernelBytes() } : {}),
        ...(procs.n > 0 ? { pssBytes: procs.pss, rssBytes: procs.rss } : {}),
        processes: procs.n,
        ...(km ? { kernelMemoryBytes: km.bytes } : {}),
      });
    }
    return { steps, method: inst.method, usageFile: cg.usageFile(), ...(kernelMethod ? { kernelMethod } : {}), ...(own ? { selfReported: own } : {}) };
  });
}

export interface FitModel {
  /** MiB of the first instance beyond the fixed cost: (U_k − U_1) / (k − 1) */
  marginalBytes: number;
  /** U_1 − marginal: what the side pays before its first instance (the holder process) */
  fixedBytes: number;
  /** ⌊(budget − fixed) / marginal⌋, 0 when the budget does not cover the fixed cost; undefined when marginal ≤ 0 */
  predicted: number | undefined;
}

/** The straight line through the first and last step, and what it says fits in `budgetBytes`. */
export function fitModel(steps: readonly Pick<IdleStep, 'n' | 'cgroupBytes'>[], budgetBytes: number): FitModel {
  if (steps.length < 2) throw new Error('a fit needs at least two steps (N = 1 and N = k)');
  const first = steps[0]!;
  const last = steps[steps.length - 1]!;
  const marginal = (last.cgroupBytes - first.cgroupBytes) / (last.n - first.n);
  const fixed = first.cgroupBytes - first.n * marginal;
  const predicted = marginal > 0 ? Math.max(0, Math.floor((budgetBytes - fixed) / marginal)) : undefined;
  return { marginalBytes: marginal, fixedBytes: fixed, predicted };
}

/** over-budget: a side that reports its own memory went past the budget (checked after each start) */
export type FitOutcome = 'reached' | 'oom-kill' | 'start-error' | 'timeout' | 'over-budget';

export interface FitTrial {
  /** how many were asked for */
  target: number;
  /** how many started and answered */
  started: number;
  /** how many of them were alive at the end */
  alive: number;
  outcome: FitOutcome;
  /** the error that stopped the start of instance #started+1, with where (empty when reached) */
  reason: string;
  failCount: number;
  oomKills: number;
  peakBytes?: number;
  /** set when the budget was checked against the variant's own reading, not enforced by the cell's limit */
  checkedNotLimited?: boolean;
}

/** Starts `target` instances in a cell limited to `budgetBytes`, or says at which one it failed and why. */
export async function tryBudget(variant: Variant, fn: FunctionEntry, budgetBytes: number, target: number, o: CellOptions): Promise<FitTrial> {
  let started = 0;
  let over: string | undefined;
  let ownPeak: number | undefined;
  const finish = async (inst: IdleInstances | undefined, cg: MemoryCgroup, err: Error | undefined): Promise<FitTrial> => {
    await new Promise((r) => setTimeout(r, 100)); // an OOM kill during the last start shows as an exit
    // the instance that went past the budget started, but does not fit
    const alive = inst ? Math.min(started, await inst.alive()) : 0;
    const oomKills = cg.oomKills();
    const failCount = cg.failCount();
    const peak = inst?.memory ? ownPeak : cg.peakBytes();
    let outcome: FitOutcome = 'reached';
    if (oomKills > 0) outcome = 'oom-kill';
    else if (over) outcome = 'over-budget';
    else if (err) outcome = err instanceof InvokeError && err.kind === 'timeout' ? 'timeout' : 'start-error';
    else if (alive < started) outcome = 'start-error';
    const where = started === 0 && !inst ? 'starting the holder, before instance #1' : `starting instance #${started + 1}`;
    const reason = over
      ? over
      : err
      ? `${where}: ${err.message}`
      : alive < started
        ? `${started - alive} of ${started} instances died after starting`
        : '';
    return { target, started, alive, outcome, reason, failCount, oomKills, ...(peak !== undefined ? { peakBytes: peak } : {}), ...(inst?.memory ? { checkedNotLimited: true } : {}) };
  };
  /** a self-reporting side: its reading against the budget; the reason when past it */
  const pastBudget = async (inst: IdleInstances, what: string): Promise<string | undefined> => {
    const m = await bounded(inst.memory!(), o.timeoutMs, `${variant.name} memory`);
    ownPeak = Math.max(ownPeak ?? 0, m.bytes);
    if (m.bytes <= budgetBytes) return undefined;
    const mib = (b: number) => (b / 2 ** 20).toFixed(1);
    return `${what} the side used ${mib(m.bytes)} MiB (${m.shared.label} ${mib(m.shared.bytes)} MiB of it), past the ${mib(budgetBytes)} MiB budget`;
  };
  return inCell(
    variant,
    fn,
    { ...o, prefix: 'density-fit', limitBytes: budgetBytes },
    async (inst, cg) => {
      let err: Error | undefined;
      if (inst.memory) over = await pastBudget(inst, 'before instance #1 (the shared part alone):');
      while (started < target && !over) {
        try {
          const out = await bounded(inst.add(o.input), o.timeoutMs + BACKSTOP_MS, `${variant.name} instance #${started + 1}`);
          verified(variant, fn, o.input, out);
          if (inst.memory) over = await pastBudget(inst, `with instance #${started + 1}`);
          if (!over) started++;
        } catch (e) {
          if (e instanceof FatalMeasurementError) throw e;
          err = e as Error;
          break;
        }
      }
      return finish(inst, cg, err);
    },
    (e, cg) => {
      // the holder itself did not start in the budget: synchronous reads only (inCell removes the cell next)
      const oomKills = cg.oomKills();
      const peak = cg.peakBytes();
      const outcome: FitOutcome = oomKills > 0 ? 'oom-kill' : e instanceof InvokeError && e.kind === 'timeout' ? 'timeout' : 'start-error';
      return { target, started: 0, alive: 0, outcome, reason: `starting the holder, before instance #1: ${e.message}`, failCount: cg.failCount(), oomKills, ...(peak !== undefined ? { peakBytes: peak } : {}) };
    },
  );
}

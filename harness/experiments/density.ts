// Density: what N idle, ready instances cost, like for like (N = 1 … k, each side's whole processes in a
// memory cgroup of its own, the holder of shared instances included), and how many fit in a budget:
// predicted from that line, then started for real in a cgroup limited to the budget.
import fs from 'node:fs';
import path from 'node:path';
import type { Experiment, RunContext } from '../experiment/context.js';
import { FatalMeasurementError } from '../experiment/context.js';
import { positiveIntFlag } from '../experiment/args.js';
import type { FunctionEntry } from '../functions/types.js';
import { memoryCgroupLayout, removeStaleMemoryCgroups } from '../platform/memory-cgroup.js';
import type { Variant } from '../platform/variant.js';
import { progress } from '../measure/progress.js';
import { shuffle } from '../measure/random.js';
import { median } from '../measure/stats.js';
import type { RawRow, SummaryRow } from '../results/schema.js';
import { densityFigures } from '../figures/density.js';
import { drawFigures } from '../figures/draw.js';
import { parseParams } from '../figures/params.js';
import { fitModel, idleSequence, tryBudget, type IdleSequence } from './density-idle.js';

const MiB = 2 ** 20;
const PAGE = 4096;

export const density: Experiment = {
  name: 'density',
  summary: 'memory of N = 1 … k idle instances per side (cgroup usage incl. kernel memory, and PSS/RSS of its processes), and a memory budget predicted and really tried',
  notebook: 'density.ipynb',
  flags: {
    instances: { type: 'string', help: 'density: k, the largest N of idle instances per variant x function (default 16; quick 4; at least 2)' },
    'budget-mib': { type: 'string', help: 'density: memory budget that is predicted and tried (default 1024; quick 64)' },
  },
  async run(ctx) {
    const { args } = ctx;
    const k = positiveIntFlag(args, 'instances', args.quick ? 4 : 16);
    if (k < 2) throw new Error('--instances must be at least 2: the fixed and marginal costs need N = 1 and N = k');
    const budget = positiveIntFlag(args, 'budget-mib', args.quick ? 64 : 1024);
    const reps = ctx.reps(1, 3);
    const fns = args.functions ? ctx.functions : ['noop', 'sha256', 'json'].map((n) => ctx.catalog.get(n));
    const cells = shuffle(ctx.cells(['warm'], fns), ctx.rng);
    const layout = memoryCgroupLayout();
    if (!layout.ok) {
      for (const c of cells) ctx.skip(c.variant.name, c.fn.name, 'warm', `density needs a memory cgroup: ${layout.reason}`);
      return;
    }
    for (const line of removeStaleMemoryCgroups('density').concat(removeStaleMemoryCgroups('density-fit'))) {
      ctx.notes.push(`start-up cleanup: ${line}`);
      process.stderr.write(`start-up cleanup: ${line}\n`);
    }
    ctx.notes.push(`density: memory cgroup ${layout.layout.kind} under ${layout.layout.parent}; budget ${budget} MiB${args.quick ? ' (quick mode: a small budget, so the trial stays short)' : ''}; N = 1 … ${k}, ${reps} sequence(s) per cell`);
    const bar = progress({ label: 'density', total: cells.length });
    for (const c of cells) {
      if (ctx.interrupted) return;
      if (!c.variant.startIdle) {
        ctx.skip(c.variant.name, c.fn.name, 'warm', 'the variant cannot start idle instances (no startIdle)');
        bar.tick();
        continue;
      }
      try {
        await measureCell(ctx, c.variant, c.fn, { k, budget, reps });
      } catch (e) {
        if (e instanceof FatalMeasurementError) throw e;
        if (ctx.interrupted) return;
        ctx.fail({ variant: c.variant.name, function: c.fn.name, mode: 'warm', path: 'idle', reason: (e as Error).message });
      }
      bar.tick();
    }
    bar.done();
  },
  async figures(data, dir) {
    return drawFigures(densityFigures(data.summary), dir);
  },
  report(data, runDir) {
    const lines = densityReport(data.summary);
    if (lines.length) fs.writeFileSync(path.join(runDir, 'density.txt'), lines.join('\n') + '\n');
    return lines;
  },
};

async function measureCell(ctx: RunContext, variant: Variant, fn: FunctionEntry, o: { k: number; budget: number; reps: number }): Promise<void> {
  const opts = { timeoutMs: ctx.args.timeoutMs, input: fn.workload.input(ctx.args.seed, 'small') };
  const base = { variant: variant.name, function: fn.name, mode: 'warm', path: 'idle' };
  const cell = `${variant.name}/${fn.name}`;
  const predictions: number[] = [];
  let last: IdleSequence | undefined;
  for (let rep = 0; rep < o.reps; rep++) {
    if (ctx.interrupted) return;
    const seq = await idleSequence(variant, fn, o.k, opts);
    last = seq;
    const rows: Omit<RawRow, 'experiment'>[] = [];
    const add = (metric: string, params: string, value: number, unit = 'MiB') => rows.push({ ...base, metric, params, iteration: rep, value, unit });
    const hasProcesses = seq.steps.every((s) => s.processes > 0);
    for (const s of seq.steps) {
      const p = `n=${s.n}`;
      if (hasProcesses) {
        add('cgroup_per_instance', p, s.cgroupBytes / s.n / MiB);
        if (s.cgroupKernelBytes !== undefined) add('cgroup_kernel_per_instance', p, s.cgroupKernelBytes / s.n / MiB);
        if (s.pssBytes !== undefined && Number.isFinite(s.pssBytes)) add('pss_per_instance', p, s.pssBytes / s.n / MiB);
        if (s.rssBytes !== undefined) add('rss_per_instance', p, s.rssBytes / s.n / MiB);
        add('processes', p, s.processes, 'processes');
        // a daemon's memory, shared by its containers: the total and its share per instance (both in cgroup_per_instance too)
        if (s.sharedBytes !== undefined) {
          add('daemon_memory', p, s.sharedBytes / MiB);
          add('daemon_share_per_instance', p, s.sharedBytes / s.n / MiB);
        }
      }
      if (s.kernelMemoryBytes !== undefined) add('memlock_per_instance', p, s.kernelMemoryBytes / s.n / MiB);
    }
    if (hasProcesses) {
      const m = fitModel(seq.steps, o.budget * MiB);
      add('fixed_cost', '', m.fixedBytes / MiB);
      add('marginal_cost', '', m.marginalBytes / MiB);
      if (m.predicted !== undefined) {
        add('fit_predicted', `budget=${o.budget} MiB`, m.predicted, 'instances');
        predictions.push(m.predicted);
      } else ctx.notes.push(`density ${cell}: no prediction (rep ${rep}): the cell's usage did not grow from N = 1 to N = ${o.k}`);
    }
    ctx.record(rows);
  }
  if (!last) return;
  const withProcesses = last.steps.every((s) => s.processes > 0);
  const read = last.selfReported
    ? `; not in the cell (not our children): memory reported by the variant: ${last.selfReported.method}`
    : withProcesses
    ? `; cell memory read from ${last.usageFile.replace(/fxh-\d+-density-\d+/, 'fxh-<pid>-density-<n>')}, PSS/RSS from /proc/<pid>/smaps_rollup of its processes` : '';
  ctx.notes.push(`density ${cell}: ${last.method}${read}${last.kernelMethod ? `; ${last.kernelMethod}` : ''}`);
  if (!withProcesses) {
    ctx.notes.push(`density ${cell}: no budget tried: the instances hold no process of their own (kernel memory, shown apart)`);
    return;
  }
  if (ctx.interrupted) return;
  const predicted = predictions.length ? Math.round(median(predictions)) : undefined;
  // a prediction of 0 is tried with one instance, to see what stops it; none (usage flat over N = 1 … k, the
  // marginal below what the cgroup resolves) with one page per instance, the least an instance can cost
  const target = predicted === undefined ? Math.floor((o.budget * MiB) / PAGE) : Math.max(1, predicted);
  if (predicted === undefined) ctx.notes.push(`density ${cell}: no prediction, so the trial asks for budget ÷ 4 KiB = ${target} instances and reports where starting stops`);
  const trial = await tryBudget(variant, fn, o.budget * MiB, target, opts);
  const p = `budget=${o.budget} MiB;outcome=${trial.outcome}`;
  ctx.record([
    { ...base, metric: 'fit_tried', params: p, iteration: 0, value: trial.alive, unit: 'instances' },
    { ...base, metric: 'fit_started', params: p, iteration: 0, value: trial.started, unit: 'instances' },
  ]);
  const peak = trial.peakBytes !== undefined ? `, peak ${(trial.peakBytes / MiB).toFixed(1)} MiB` : '';
  const how = trial.checkedNotLimited ? ' (checked against the variant\'s own reading after each start: no kernel limit binds a daemon\'s side)' : '';
  ctx.notes.push(
    `density fit ${cell}: budget ${o.budget} MiB, predicted ${predicted ?? 'none'}, asked ${trial.target}, started ${trial.started}, alive ${trial.alive} (${trial.outcome})` +
      `${trial.reason ? `; stopped ${trial.reason}` : ''}; failcnt ${trial.failCount}, oom_kill ${trial.oomKills}${peak}${how}`,
  );
}

/** One line per cell: per-instance cost at N = 1 and N = k, the fit predicted and tried. From summary rows only. */
export function densityReport(summary: readonly SummaryRow[]): string[] {
  const ok = summary.filter((r) => r.status === 'ok' && r.n > 0);
  const cells = [...new Set(ok.map((r) => `${r.variant}\0${r.function}`))].sort();
  const fmt = (v: number) => (v * 1024 >= 999.5 ? `${v.toPrecision(3)} MiB` : `${(v * 1024).toPrecision(3)} KiB`);
  const out: string[] = [];
  for (const key of cells) {
    const [variant, fn] = key.split('\0') as [string, string];
    const mine = ok.filter((r) => r.variant === variant && r.function === fn);
    const perN = (metric: string) =>
      mine.filter((r) => r.metric === metric).map((r) => ({ n: Number(parseParams(r.params)['n']), v: r.p50 })).sort((a, b) => a.n - b.n);
    const cg = perN('cgroup_per_instance');
    const ml = perN('memlock_per_instance');
    const parts: string[] = [];
    if (cg.length) parts.push(`cgroup per instance N=${cg[0]!.n} ${fmt(cg[0]!.v)}, N=${cg.at(-1)!.n} ${fmt(cg.at(-1)!.v)}`);
    const pss = perN('pss_per_instance');
    if (pss.length) parts.push(`PSS per instance N=${pss[0]!.n} ${fmt(pss[0]!.v)}, N=${pss.at(-1)!.n} ${fmt(pss.at(-1)!.v)}`);
    const dm = perN('daemon_memory');
    if (dm.length) parts.push(`daemon ${fmt(dm.at(-1)!.v)} (share per instance at N=${dm.at(-1)!.n} ${fmt(dm.at(-1)!.v / dm.at(-1)!.n)})`);
    if (ml.length) parts.push(`memlock per instance ${fmt(ml.at(-1)!.v)} (kernel memory, not comparable)`);
    const pred = mine.find((r) => r.metric === 'fit_predicted');
    const tried = mine.find((r) => r.metric === 'fit_tried');
    if (pred) parts.push(`fit in ${parseParams(pred.params)['budget']}: predicted ${Math.round(pred.p50)}`);
    if (tried) parts.push(`tried ${Math.round(tried.p50)} alive (${parseParams(tried.params)['outcome']})`);
    if (parts.length) out.push(`density ${variant}/${fn}: ${parts.join('; ')}`);
  }
  return out;
}

// Cold-start breakdown (experiment cold-breakdown): tables and figures from raw rows; never measures.
//   breakdownCells(raw)      per variant × function × mode: mean phase durations, median counts of the
//                            scope that ran the function, top syscalls, tracing overhead
//   breakdownFigures(cells)  a stacked bar of phases per variant (own linear axis each), the phases as
//                            shares of the cold start for all variants together, and a table-like
//                            figure of counts (and one of the top syscalls), colour on a log scale
//   breakdownTableText / overheadLines   the text the run prints and writes
import * as Plot from '@observablehq/plot';
import type { RawRow, SummaryRow } from '../results/schema.js';
import { bootstrapRatioCI, median } from '../measure/stats.js';
import { createRng } from '../measure/random.js';
import type { Figure } from './render.js';
import { cellNotes, unique } from './common.js';
import { fmtUs } from './cold-start.js';

/** Phase names in timeline order (in-process variants use the first group, process variants the second). */
export const PHASE_ORDER = [
  'prepare', 'compile', 'prepare instance', 'instantiate',
  'spawn', 'exec runtime', 'runtime start', 'runtime init exec', 'runtime setup', 'namespaces+mounts', 'exec function',
  'function run', 'runtime exit', 'return',
];
export const PHASE_HELP: Record<string, string> = {
  prepare: 'arrival → compile start (harness, module bytes)',
  compile: 'WebAssembly.Module compile',
  'prepare instance': 'compile done (or arrival) → instantiate start',
  instantiate: 'new WebAssembly.Instance + WASI host + _initialize: the first instruction follows',
  spawn: 'arrival → the first child process forked (Node spawn: pipes, fork of this process)',
  'exec runtime': 'fork → exec of the runtime (runc) in the child',
  'runtime start': 'runtime exec → its first fork (runc: Go start-up, config, state; forks runc init)',
  'runtime init exec': 'that fork → the helper\'s last exec (runc init exec\'d, copies itself to a memfd, re-execs)',
  'runtime setup': '→ first unshare (runc: cgroups, bootstrap data to runc init, nsexec stage 0)',
  'namespaces+mounts': 'first unshare → last mount/pivot_root (container rootfs and namespaces)',
  'exec function': 'previous milestone → exec of the function binary: its first instruction follows',
  'function run': 'first instruction → the function exits / returns',
  'runtime exit': 'function exit → the runtime process exits (runc cleanup)',
  return: 'exit (or return) → the output is in the caller (pipes, wait, promise)',
};
export const COUNT_METRICS = ['syscalls_total', 'page_faults', 'processes', 'threads', 'execs', 'mounts', 'bytes_read'] as const;

export interface Overhead {
  tracedUs: number;
  untracedUs: number;
  diffUs: number;
  /** traced / untraced median with a bootstrap 95% CI */
  ratio: number;
  lo: number;
  hi: number;
  nTraced: number;
  nUntraced: number;
  /** median kernel time (µs) and runs of the tracing programs per traced cold start, when measured */
  progUs?: number;
  progRuns?: number;
}

export interface BreakdownCell {
  variant: string;
  function: string;
  mode: string;
  /** traced samples */
  n: number;
  /** which counts describe the invocation: "tree" (its processes) or "self" (in-process) */
  scope: 'tree' | 'self';
  /** mean µs per phase over the traced samples (a phase missing from a sample counts 0): they add up to the mean total */
  phases: { name: string; meanUs: number; medianUs: number }[];
  meanTracedUs: number;
  medianTracedUs: number;
  medianFirstInstructionUs: number;
  /** medians of the scope's counts */
  counts: Record<string, number>;
  /** medians of the measuring process's counts when scope is "tree" (the spawning side) */
  selfCounts: Record<string, number>;
  /** mean calls per cold start (absent = 0), largest first */
  topSyscalls: { name: string; mean: number }[];
  overhead?: Overhead;
}

const key = (r: Pick<RawRow, 'variant' | 'function' | 'mode'>) => `${r.variant}\0${r.function}\0${r.mode}`;
const scopeOf = (params: string) => /(?:^|;)scope=(\w+)/.exec(params)?.[1];
const meanOf = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

/** Per cell analysis of the cold-breakdown rows in `raw` (other experiments' rows are ignored). */
export function breakdownCells(raw: readonly RawRow[]): BreakdownCell[] {
  const rows = raw.filter((r) => r.experiment === 'cold-breakdown' || r.experiment === undefined || r.experiment === '');
  const groups = new Map<string, RawRow[]>();
  for (const r of rows) {
    const k = key(r);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push(r);
  }
  const out: BreakdownCell[] = [];
  for (const g of groups.values()) {
    const first = g[0]!;
    const vals = (metric: string, scope?: string) => g.filter((r) => r.metric === metric && scopeOf(r.params) === scope).map((r) => r.value);
    const traced = vals('cold_start_traced');
    const untraced = vals('cold_start_untraced');
    const n = traced.length;
    const treeProcs = vals('processes', 'tree');
    const scope: 'tree' | 'self' = treeProcs.length && median(treeProcs) > 0 ? 'tree' : 'self';
    const phaseNames = unique(g.filter((r) => r.metric.startsWith('phase:')).map((r) => r.metric.slice(6)));
    phaseNames.sort((a, b) => rank(a) - rank(b));
    const phases = phaseNames.map((name) => {
      const xs = vals(`phase:${name}`);
      return { name, meanUs: n ? xs.reduce((a, b) => a + b, 0) / n : NaN, medianUs: xs.length ? median(xs) : NaN };
    });
    const countsOf = (sc: string) => Object.fromEntries(COUNT_METRICS.flatMap((m) => {
      const xs = vals(m, sc);
      return xs.length ? [[m, median(xs)]] : [];
    }));
    const sysTotals = new Map<string, number>();
    for (const r of g) {
      if (!r.metric.startsWith('syscall:') || scopeOf(r.params) !== scope) continue;
      sysTotals.set(r.metric.slice(8), (sysTotals.get(r.metric.slice(8)) ?? 0) + r.value);
    }
    const nCounts = vals('syscalls_total', scope).length;
    const topSyscalls = [...sysTotals].map(([name, total]) => ({ name, mean: nCounts ? total / nCounts : NaN })).sort((a, b) => b.mean - a.mean);
    let overhead: Overhead | undefined;
    if (traced.length && untraced.length) {
      const ci = bootstrapRatioCI(traced, untraced, median, { rng: createRng(7), iterations: 2000 });
      overhead = {
        tracedUs: median(traced), untracedUs: median(untraced), diffUs: median(traced) - median(untraced),
        ratio: ci.ratio, lo: ci.lo, hi: ci.hi, nTraced: traced.length, nUntraced: untraced.length,
      };
      const progUs = vals('trace_prog_time');
      const progRuns = vals('trace_prog_runs');
      if (progUs.length) Object.assign(overhead, { progUs: median(progUs), progRuns: median(progRuns) });
    }
    out.push({
      variant: first.variant, function: first.function, mode: first.mode, n, scope, phases,
      meanTracedUs: meanOf(traced), medianTracedUs: n ? median(traced) : NaN,
      medianFirstInstructionUs: vals('first_instruction').length ? median(vals('first_instruction')) : NaN,
      counts: countsOf(scope), selfCounts: scope === 'tree' ? countsOf('self') : {}, topSyscalls,
      ...(overhead ? { overhead } : {}),
    });
  }
  return out.sort((a, b) => (a.variant + a.function + a.mode < b.variant + b.function + b.mode ? -1 : 1));
}

function rank(phase: string): number {
  const i = PHASE_ORDER.indexOf(phase);
  return i < 0 ? PHASE_ORDER.length : i;
}

// ------------------------------------------------------------------------------------- text

function fmtN(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toPrecision(3)}M`;
  if (Math.abs(v) >= 1e4) return `${(v / 1e3).toPrecision(3)}k`;
  return Number.isInteger(v) ? String(v) : v.toPrecision(3);
}

function fmtBytes(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  if (v >= 2 ** 20) return `${(v / 2 ** 20).toPrecision(3)} MiB`;
  if (v >= 1024) return `${(v / 1024).toPrecision(3)} KiB`;
  return `${v} B`;
}

/** The human-readable table: per cell, the phases and the counts. */
export function breakdownTableText(cells: readonly BreakdownCell[]): string {
  if (!cells.length) return 'cold-breakdown: no traced or untraced samples\n';
  const lines: string[] = [];
  for (const c of cells) {
    lines.push(`== ${c.variant} / ${c.function} / ${c.mode}  (n traced = ${c.n}; counts of scope "${c.scope}": ${c.scope === 'tree' ? 'the processes the invocation forked' : 'the measuring process, where the function ran'})`);
    if (c.n) {
      lines.push(`   cold start traced: median ${fmtUs(c.medianTracedUs)}, mean ${fmtUs(c.meanTracedUs)}; arrival → first instruction: median ${fmtUs(c.medianFirstInstructionUs)}`);
      for (const p of c.phases) {
        const share = c.meanTracedUs > 0 ? ((100 * p.meanUs) / c.meanTracedUs).toFixed(1) : '–';
        lines.push(`   ${p.name.padEnd(18)} mean ${fmtUs(p.meanUs).padStart(10)}  ${share.padStart(5)}%   (median ${fmtUs(p.medianUs)})`);
      }
      lines.push(
        '   counts (median): ' +
          COUNT_METRICS.map((m) => `${m}=${m === 'bytes_read' ? fmtBytes(c.counts[m]) : fmtN(c.counts[m])}`).join(', '),
      );
      if (c.scope === 'tree') {
        lines.push('   the measuring process meanwhile (spawning side): ' + COUNT_METRICS.map((m) => `${m}=${m === 'bytes_read' ? fmtBytes(c.selfCounts[m]) : fmtN(c.selfCounts[m])}`).join(', '));
      }
      lines.push('   top syscalls (mean per cold start): ' + c.topSyscalls.slice(0, 12).map((s) => `${s.name} ${fmtN(+s.mean.toPrecision(3))}`).join(', '));
    }
    if (c.overhead) lines.push(`   ${overheadLine(c)}`);
    else lines.push('   tracing overhead: not measured (no traced or no untraced samples)');
  }
  return lines.join('\n') + '\n';
}

function overheadLine(c: BreakdownCell): string {
  const o = c.overhead!;
  const pct = (x: number) => `${x >= 1 ? '+' : ''}${((x - 1) * 100).toFixed(1)}%`;
  const prog = o.progUs === undefined ? '' : `; the programs ran ${fmtN(Math.round(o.progRuns ?? NaN))} times for ${fmtUs(o.progUs)} of kernel time per traced cold start (median; ${((100 * o.progUs) / o.tracedUs).toFixed(1)}% of it, a lower bound of the overhead)`;
  return `tracing overhead ${c.variant}/${c.function}/${c.mode}: median traced ${fmtUs(o.tracedUs)} vs untraced ${fmtUs(o.untracedUs)} = ${o.diffUs >= 0 ? '+' : ''}${fmtUs(o.diffUs)} (${pct(o.ratio)}, 95% CI ${pct(o.lo)} … ${pct(o.hi)}; n ${o.nTraced}/${o.nUntraced})${prog}`;
}

/** One line per cell with the tracing overhead (traced − untraced median). */
export function overheadLines(cells: readonly BreakdownCell[]): string[] {
  const withO = cells.filter((c) => c.overhead);
  if (!withO.length) return ['cold-breakdown: tracing overhead not measured (no traced samples: see the skipped rows)'];
  return withO.map(overheadLine);
}

// ------------------------------------------------------------------------------------- figures

const PHASE_COLORS: Record<string, string> = {
  prepare: '#c7c7c7', compile: '#1d4f91', 'prepare instance': '#8db8ee', instantiate: '#3b7dd8',
  spawn: '#f5be7a', 'exec runtime': '#e8830c', 'runtime start': '#c96a00', 'runtime init exec': '#d9a05b', 'runtime setup': '#a34d00', 'namespaces+mounts': '#8e1b1b', 'exec function': '#d64545',
  'function run': '#2fa35a', 'runtime exit': '#7b52c7', return: '#8c8c8c',
};

function phaseColor(names: readonly string[]): { domain: string[]; range: string[] } {
  const domain = [...names].sort((a, b) => rank(a) - rank(b));
  return { domain, range: domain.map((n) => PHASE_COLORS[n] ?? '#444') };
}

const cellLabel = (c: BreakdownCell) => `${c.function} · ${c.mode}`;

/** Stacked bars of mean phase durations, one figure per variant (its own linear µs axis). */
export function phaseFigure(cells: readonly BreakdownCell[], variant: string, notes: string[] = []): Figure {
  const mine = cells.filter((c) => c.variant === variant && c.n > 0);
  const data = mine.flatMap((c) => c.phases.map((p) => ({ row: cellLabel(c), phase: p.name, us: p.meanUs })));
  const rows = unique(mine.map(cellLabel));
  const phases = unique(data.map((d) => d.phase));
  return {
    name: `cold-breakdown-${variant}`,
    title: `Where a ${variant} cold start goes`,
    subtitle:
      `Mean duration of each phase over the traced cold starts (they add up to the mean cold start; the label is the median). ` +
      `Phases from eBPF events (fork, exec, mounts, exit) and user-space marks on one clock (CLOCK_MONOTONIC).`,
    notes: [
      ...phases.map((p) => `${p}: ${PHASE_HELP[p] ?? ''}`),
      ...mine.map((c) => `${cellLabel(c)}: n=${c.n}; arrival → first instruction median ${fmtUs(c.medianFirstInstructionUs)}`),
      ...notes,
      ...(mine.length ? [] : ['No traced cold starts for this variant.']),
    ],
    legendLabel: 'phase',
    plot: {
      height: Math.max(110, rows.length * 34 + 60),
      marginLeft: 170,
      marginRight: 90,
      x: { label: 'mean time (µs) →', grid: true, nice: true },
      y: { label: null, domain: rows },
      color: phaseColor(phases),
      marks: [
        Plot.barX(data, Plot.stackX({ y: 'row', x: 'us', fill: 'phase', order: phases, title: (d: { phase: string; us: number }) => `${d.phase}: ${fmtUs(d.us)}` })),
        Plot.text(mine, { y: cellLabel, x: (c: BreakdownCell) => c.phases.reduce((a, p) => a + p.meanUs, 0), text: (c: BreakdownCell) => `median ${fmtUs(c.medianTracedUs)}`, dx: 6, textAnchor: 'start', fontSize: 9 }),
      ],
    },
  };
}

/** All variants on one axis: each phase as a share (%) of the mean cold start. */
export function shareFigure(cells: readonly BreakdownCell[], notes: string[] = []): Figure {
  const mine = cells.filter((c) => c.n > 0);
  const label = (c: BreakdownCell) => `${c.variant} · ${c.function} · ${c.mode}`;
  const data = mine.flatMap((c) => {
    const tot = c.phases.reduce((a, p) => a + p.meanUs, 0);
    return c.phases.map((p) => ({ row: label(c), phase: p.name, pct: tot > 0 ? (100 * p.meanUs) / tot : 0 }));
  });
  const phases = unique(data.map((d) => d.phase));
  return {
    name: 'cold-breakdown-share',
    title: 'Cold start phases as shares, every variant',
    subtitle: 'Share of the mean traced cold start per phase; the label is the median cold start (absolute scales differ by orders of magnitude).',
    notes: [...notes, ...(mine.length ? [] : ['No traced cold starts.'])],
    legendLabel: 'phase',
    plot: {
      height: Math.max(110, mine.length * 26 + 60),
      marginLeft: 230,
      marginRight: 80,
      x: { label: 'share of the cold start (%) →', domain: [0, 100], grid: true },
      y: { label: null, domain: mine.map(label) },
      color: phaseColor(phases),
      marks: [
        Plot.barX(data, Plot.stackX({ y: 'row', x: 'pct', fill: 'phase', order: phases })),
        Plot.text(mine, { y: label, x: 100, text: (c: BreakdownCell) => fmtUs(c.medianTracedUs), dx: 6, textAnchor: 'start', fontSize: 9 }),
      ],
    },
  };
}

/** A table as a figure: one column per variant · mode, colour on a log scale, the number in the cell. */
function heatTable(name: string, title: string, subtitle: string, data: { col: string; row: string; fn: string; v: number; text: string }[], rows: string[], notes: string[]): Figure {
  const cols = unique(data.map((d) => d.col));
  const fns = unique(data.map((d) => d.fn));
  return {
    name,
    title,
    subtitle,
    notes: [...notes, ...(data.length ? [] : ['No traced cold starts.'])],
    legend: false,
    plot: {
      width: Math.max(560, 240 + cols.length * 110),
      height: Math.max(120, fns.length * rows.length * 22 + 120),
      marginLeft: 140,
      marginRight: 90,
      marginBottom: 10,
      marginTop: 90,
      x: { label: null, domain: cols, axis: 'top', tickRotate: -20 },
      y: { label: null, domain: rows },
      fy: { label: null, domain: fns },
      color: { type: 'symlog', scheme: 'oranges' },
      marks: [
        Plot.cell(data, { x: 'col', y: 'row', fy: 'fn', fill: 'v', inset: 0.5 }),
        Plot.text(data, { x: 'col', y: 'row', fy: 'fn', text: 'text', fontSize: 10, fill: (d: { v: number }) => (d.v > 3000 ? 'white' : 'black') }),
      ],
    },
  };
}

/** Counts per variant (median per cold start, of the scope that ran the function). */
export function countsFigure(cells: readonly BreakdownCell[], notes: string[] = []): Figure {
  const mine = cells.filter((c) => c.n > 0);
  const data = mine.flatMap((c) =>
    COUNT_METRICS.flatMap((m) => {
      const v = c.counts[m];
      if (v === undefined) return [];
      return [{ col: `${c.variant} · ${c.mode}${c.scope === 'self' ? ' (in-process)' : ''}`, row: m, fn: c.function, v, text: m === 'bytes_read' ? fmtBytes(v) : fmtN(v) }];
    }),
  );
  return heatTable(
    'cold-breakdown-counts',
    'What a cold start does in the kernel',
    'Median per traced cold start. Process variants: the processes the invocation forked (runtime, container, function). In-process variants: the measuring process during the call. Colour: log scale.',
    data,
    [...COUNT_METRICS],
    notes,
  );
}

/** The most frequent syscalls (mean calls per cold start), the union of each cell's top `top`. */
export function syscallsFigure(cells: readonly BreakdownCell[], top = 8, notes: string[] = []): Figure {
  const mine = cells.filter((c) => c.n > 0);
  const names = unique(mine.flatMap((c) => c.topSyscalls.slice(0, top).map((s) => s.name)));
  const total = (n: string) => mine.reduce((a, c) => a + (c.topSyscalls.find((s) => s.name === n)?.mean ?? 0), 0);
  names.sort((a, b) => total(b) - total(a));
  const data = mine.flatMap((c) =>
    names.map((n) => {
      const v = c.topSyscalls.find((s) => s.name === n)?.mean ?? 0;
      return { col: `${c.variant} · ${c.mode}`, row: n, fn: c.function, v, text: v ? fmtN(+v.toPrecision(3)) : '0' };
    }),
  );
  return heatTable('cold-breakdown-syscalls', 'Syscalls of a cold start', `Mean calls per traced cold start of each cell's ${top} most frequent syscalls. Colour: log scale.`, data, names, notes);
}

/** Every figure: one phase figure per variant, the shares, the counts, the syscalls. Skipped/failed cells are listed under each. */
export function breakdownFigures(cells: readonly BreakdownCell[], summary: readonly SummaryRow[] = []): Figure[] {
  const notes = cellNotes(summary.filter((r) => r.status !== 'ok'), ['cold_start_traced']);
  const variants = unique([...cells.map((c) => c.variant), ...summary.filter((r) => r.status === 'skipped').map((r) => r.variant)]);
  const withData = variants.filter((v) => cells.some((c) => c.variant === v && c.n > 0));
  const skippedOnly = variants.filter((v) => !withData.includes(v));
  const extra = skippedOnly.length ? [`Not traced: ${skippedOnly.join(', ')} (reasons above).`] : [];
  return [
    ...withData.map((v) => phaseFigure(cells, v, notes.filter((n) => n.includes(`${v}/`)))),
    shareFigure(cells, [...notes, ...extra]),
    countsFigure(cells, [...notes, ...extra]),
    syscallsFigure(cells, 8, [...notes, ...extra]),
  ];
}

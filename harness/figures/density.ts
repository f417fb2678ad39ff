// Density: memory of one idle instance (PSS and RSS, MiB, log x) per variant × function, and how
// many instances fit a memory budget (rows of metric `fit_in_budget`).
import * as Plot from '@observablehq/plot';
import type { SummaryRow } from '../results/schema.js';
import type { Figure } from './render.js';
import { cellNotes, mibPerUnit, okRows, scaleRow, unique } from './common.js';
import { parseParams } from './params.js';

/** Axis ticks of a MiB axis: "512 KiB", "2 MiB" (the SI "m" of d3's ~s would read as milli). */
export function mibTick(v: number): string {
  if (v >= 1024) return `${+(v / 1024).toPrecision(3)} GiB`;
  if (v >= 1) return `${+v.toPrecision(3)} MiB`;
  if (v * 1024 >= 1) return `${+(v * 1024).toPrecision(3)} KiB`;
  return `${+(v * 2 ** 20).toPrecision(3)} B`;
}

export interface MemoryFigureOptions {
  name?: string;
  /** default ['pss', 'rss'] */
  metrics?: string[];
}

function fmtMiB(v: number): string {
  if (!Number.isFinite(v)) return '–';
  return v >= 100 ? `${v.toFixed(0)} MiB` : v >= 1 ? `${v.toPrecision(3)} MiB` : `${(v * 1024).toPrecision(3)} KiB`;
}

/** Median memory per idle instance, PSS and RSS side by side, log MiB. */
export function memoryFigure(rows: readonly SummaryRow[], options: MemoryFigureOptions = {}): Figure {
  const metrics = options.metrics ?? ['pss', 'rss'];
  const data = okRows(rows, metrics).map((r) => ({
    ...scaleRow(r, mibPerUnit(r.unit)),
    label: r.metric.toUpperCase(),
    row: r.mode && r.mode !== 'warm' && r.mode !== 'idle' ? `${r.variant} · ${r.mode}` : r.variant,
  }));
  const functions = unique(data.map((d) => d.function));
  const rowsY = unique(data.map((d) => d.row));
  const kinds = unique(data.map((d) => d.label));
  const withCI = data.filter((d) => Number.isFinite(d.ci95_median_lo));
  const notes = cellNotes(rows, metrics);
  if (data.length === 0) notes.unshift('No measured cells.');
  return {
    name: options.name ?? 'memory-per-instance',
    title: 'Memory per idle instance',
    subtitle: 'Median over instances with its 95% CI (bar). PSS counts shared pages once per sharer; RSS counts them in full.',
    notes,
    legendLabel: 'measure',
    plot: {
      height: Math.max(120, functions.length * rowsY.length * 26 + 70),
      marginLeft: 150,
      marginRight: 110,
      x: { type: 'log', nice: true, label: 'memory per instance (log scale) →', grid: true, tickFormat: mibTick },
      y: { label: null, domain: rowsY },
      fy: { label: null, domain: functions },
      color: { domain: kinds },
      marks: [
        Plot.frame({ stroke: '#ddd' }),
        // PSS above, RSS below the row line (dy is constant per mark, so one set of marks per kind).
        ...kinds.flatMap((kind, i) => {
          const dy = kinds.length > 1 ? (i === 0 ? -5 : 5) : 0;
          const mine = data.filter((d) => d.label === kind);
          return [
            Plot.ruleY(withCI.filter((d) => d.label === kind), {
              fy: 'function', y: 'row', x1: 'ci95_median_lo', x2: 'ci95_median_hi', stroke: 'label', strokeWidth: 6, strokeOpacity: 0.4, dy,
            }),
            Plot.dot(mine, { fy: 'function', y: 'row', x: 'p50', fill: 'label', r: 3.5, dy }),
            Plot.text(mine, {
              fy: 'function', y: 'row', x: 'p50', text: (d: { label: string; p50: number }) => `${d.label} ${fmtMiB(d.p50)}`,
              dx: 8, dy, textAnchor: 'start', fontSize: 9, fill: '#555',
            }),
          ];
        }),
      ],
    },
  };
}

export interface BudgetFigureOptions {
  name?: string;
  /** default 'fit_in_budget' */
  metric?: string;
}

/** Instances that fit the memory budget (median if repeated), log x, one row per variant. */
export function budgetFigure(rows: readonly SummaryRow[], options: BudgetFigureOptions = {}): Figure {
  const metric = options.metric ?? 'fit_in_budget';
  const data = okRows(rows, [metric]).map((r) => ({
    ...r,
    row: r.mode && r.mode !== 'warm' && r.mode !== 'idle' ? `${r.variant} · ${r.mode}` : r.variant,
    fn: r.function || 'all',
  }));
  const budgets = unique(data.map((d) => parseParams(d.params)['budget'] ?? '')).filter(Boolean);
  const functions = unique(data.map((d) => d.fn));
  const rowsY = unique(data.map((d) => d.row));
  const notes = cellNotes(rows, [metric]);
  if (data.length === 0) notes.unshift('No measured cells.');
  const unit = unique(data.map((d) => d.unit)).join(', ') || 'instances';
  return {
    name: options.name ?? 'fit-in-budget',
    title: 'Instances that fit in the memory budget',
    subtitle: `${budgets.length ? `Budget: ${budgets.join(', ')}. ` : ''}Dot: median count (${unit}); bar: its 95% CI where there are ≥ 6 repeats. Log scale.`,
    notes,
    legend: false,
    plot: {
      height: Math.max(120, functions.length * rowsY.length * 24 + 70),
      marginLeft: 150,
      marginRight: 80,
      x: { type: 'log', nice: true, label: `instances in budget (log scale) →`, grid: true, tickFormat: '~s' },
      y: { label: null, domain: rowsY },
      fy: { label: null, domain: functions },
      color: { domain: rowsY },
      marks: [
        Plot.frame({ stroke: '#ddd' }),
        Plot.ruleY(data.filter((d) => Number.isFinite(d.ci95_median_lo)), { fy: 'fn', y: 'row', x1: 'ci95_median_lo', x2: 'ci95_median_hi', stroke: 'row', strokeWidth: 6, strokeOpacity: 0.4 }),
        Plot.dot(data, { fy: 'fn', y: 'row', x: 'p50', fill: 'row', r: 4 }),
        Plot.text(data, { fy: 'fn', y: 'row', x: 'p50', text: (d: SummaryRow) => String(Math.round(d.p50)), dx: 8, textAnchor: 'start', fontSize: 10 }),
      ],
    },
  };
}

/** Both density figures. */
export function densityFigures(rows: readonly SummaryRow[]): Figure[] {
  return [memoryFigure(rows), budgetFigure(rows)];
}

// Cold start per function: p50 (dot) with its 95% CI (thick rule), a thin rule out to p99 (tick),
// one row per variant × mode, log-scale µs.
import * as Plot from '@observablehq/plot';
import type { SummaryRow } from '../results/schema.js';
import type { Figure } from './render.js';
import { cellNotes, microsPerUnit, okRows, scaleRow, seriesColors, seriesLabel, sortSeries, unique } from './common.js';

export interface LatencyFigureOptions {
  name: string;
  title: string;
  /** summary metric(s) to draw */
  metrics: string[];
  /** keep only these modes (default: all) */
  modes?: string[];
  /** axis label prefix, e.g. "cold start" */
  quantity: string;
  subtitle?: string;
  /** a sentence before the default subtitle (e.g. what each mode includes) */
  preface?: string;
}

/** The p50/CI/p99 dot-and-rule figure shared by cold start and warm latency. */
export function latencyFigure(rows: readonly SummaryRow[], o: LatencyFigureOptions): Figure {
  const data = okRows(rows, o.metrics)
    .filter((r) => !o.modes || o.modes.includes(r.mode))
    .map((r) => ({ ...scaleRow(r, microsPerUnit(r.unit)), series: seriesLabel(r) }));
  const functions = unique(data.map((d) => d.function));
  const series = sortSeries(unique(data.map((d) => d.series)));
  const withCI = data.filter((d) => Number.isFinite(d.ci95_median_lo));
  const notes = cellNotes(
    rows.filter((r) => !o.modes || r.mode === '' || o.modes.includes(r.mode)),
    o.metrics,
  );
  if (data.length === 0) notes.unshift('No measured cells.');
  const rowH = 22;
  return {
    name: o.name,
    title: o.title,
    subtitle:
      o.subtitle ??
      `${o.preface ? `${o.preface} ` : ''}● median (p50) with its 95% CI (thick bar${runsNote(data)}); thin line to | p99. One row per variant · mode, one panel per function. n per cell: ${rangeOfN(data)}.`,
    notes,
    legendLabel: 'variant · mode',
    plot: {
      height: Math.max(120, functions.length * Math.max(1, series.length) * rowH + 70),
      marginLeft: 150,
      marginRight: 110,
      x: { type: 'log', nice: true, label: `${o.quantity} (µs, log scale) →`, grid: true, tickFormat: '~s' },
      y: { label: null, domain: series },
      fy: { label: null, domain: functions },
      color: seriesColors(series),
      marks: [
        Plot.frame({ stroke: '#ddd' }),
        Plot.ruleY(data, { fy: 'function', y: 'series', x1: 'p50', x2: 'p99', stroke: 'series', strokeWidth: 1.2 }),
        Plot.ruleY(withCI, {
          fy: 'function', y: 'series', x1: 'ci95_median_lo', x2: 'ci95_median_hi', stroke: 'series', strokeWidth: 8, strokeOpacity: 0.4,
        }),
        Plot.tickX(data, { fy: 'function', y: 'series', x: 'p99', stroke: 'series', strokeWidth: 2, inset: 5 }),
        Plot.dot(data, { fy: 'function', y: 'series', x: 'p50', fill: 'series', stroke: 'white', r: 3.5 }),
        Plot.text(data, {
          fy: 'function', y: 'series', x: 'p99', text: (d: SummaryRow) => `${fmtUs(d.p50)} / ${fmtUs(d.p99)}`,
          textAnchor: 'start', dx: 6, fontSize: 9, fill: '#555',
        }),
      ],
    },
  };
}

export function fmtUs(us: number): string {
  if (!Number.isFinite(us)) return '–';
  const a = Math.abs(us);
  if (a >= 1e6) return `${(us / 1e6).toPrecision(3)} s`;
  if (a >= 1e3) return `${(us / 1e3).toPrecision(3)} ms`;
  return `${us.toPrecision(3)} µs`;
}

function rangeOfN(rows: readonly { n: number }[]): string {
  if (rows.length === 0) return '—';
  const ns = rows.map((r) => r.n);
  const lo = Math.min(...ns);
  const hi = Math.max(...ns);
  return lo === hi ? String(lo) : `${lo}–${hi}`;
}

/** Cold start figure from summary rows of metric `cold_start`. */
export function coldStartFigure(rows: readonly SummaryRow[], options: { name?: string; metric?: string } = {}): Figure {
  return latencyFigure(rows, {
    name: options.name ?? 'cold-start',
    title: 'Cold start latency per function',
    metrics: [options.metric ?? 'cold_start'],
    quantity: 'cold start',
  });
}

/** how the CI was formed when the cells come from several --runs */
export function runsNote(rows: readonly { runs?: number }[]): string {
  const k = Math.max(0, ...rows.map((r) => r.runs ?? 1));
  return k > 1 ? `: Student-t over the ${k} run medians` : '';
}

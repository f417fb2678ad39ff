// Load tests: requests/s against concurrency (log2 x), one line per variant × mode, and the
// p50/p99 latency at each concurrency. Concurrency comes from params ("concurrency=N").
import * as Plot from '@observablehq/plot';
import type { SummaryRow } from '../results/schema.js';
import type { Figure } from './render.js';
import { cellNotes, microsPerUnit, okRows, scaleRow, seriesColors, seriesLabel, sortSeries, unique } from './common.js';
import { paramNumber } from './params.js';

export interface ThroughputFigureOptions {
  name?: string;
  /** default 'throughput' (requests/s) */
  metric?: string;
  /** log y axis; default: when the medians span more than 30× */
  logY?: boolean;
}

/** panel: the function, and the executor pool size when the rows hold more than one (throughput --pools) */
type Point = SummaryRow & { series: string; concurrency: number; panel: string };

function withConcurrency(rows: readonly SummaryRow[], metric: string): { points: Point[]; missing: SummaryRow[] } {
  const points: Point[] = [];
  const missing: SummaryRow[] = [];
  const ok = okRows(rows, [metric]);
  const pools = unique(ok.map((r) => paramNumber(r.params, 'pool') ?? 1));
  for (const r of ok) {
    const c = paramNumber(r.params, 'concurrency');
    const panel = pools.length > 1 ? `${r.function} · pool ${paramNumber(r.params, 'pool') ?? 1}` : r.function;
    if (c === undefined) missing.push(r);
    // one series per transport when several were measured (--transport): the default path stays unnamed
    else points.push({ ...r, series: r.path && r.path !== 'gateway' ? `${seriesLabel(r)} · ${r.path}` : seriesLabel(r), concurrency: c, panel });
  }
  points.sort((a, b) => a.concurrency - b.concurrency);
  return { points, missing };
}

function missingNote(missing: readonly SummaryRow[]): string[] {
  return missing.length
    ? [`Without a concurrency param (not drawn): ${missing.map((r) => `${r.variant}/${r.function}/${r.mode} [${r.params}]`).join('; ')}`]
    : [];
}

function concurrencyAxis(points: readonly Point[]): Plot.ScaleOptions {
  const ticks = unique(points.map((p) => p.concurrency)).sort((a, b) => a - b);
  return { type: 'log', base: 2, label: 'concurrency (log₂) →', ticks, tickFormat: (d: number) => String(d), grid: true };
}

/** Median requests/s (with 95% median CI) against concurrency. */
export function throughputFigure(rows: readonly SummaryRow[], options: ThroughputFigureOptions = {}): Figure {
  const metric = options.metric ?? 'throughput';
  const { points, missing } = withConcurrency(rows, metric);
  const functions = unique(points.map((p) => p.panel)).sort();
  const series = sortSeries(unique(points.map((p) => p.series)));
  const units = unique(points.map((p) => p.unit));
  const notes = [...cellNotes(rows, [metric]), ...missingNote(missing)];
  if (points.length === 0) notes.unshift('No measured cells.');
  const withCI = points.filter((p) => Number.isFinite(p.ci95_median_lo));
  // Variants can differ by orders of magnitude: switch to a log y so the slow ones stay readable.
  const p50s = points.map((p) => p.p50).filter((v) => v > 0);
  const logY = options.logY ?? (p50s.length > 0 && Math.max(...p50s) / Math.min(...p50s) > 30);
  const yLabel = `↑ ${units.length === 1 ? units[0] : 'requests/s'} (median${logY ? ', log scale' : ''})`;
  return {
    name: options.name ?? 'throughput',
    title: 'Throughput against concurrency',
    subtitle: 'Median of the measurement windows with its 95% CI (vertical bar); one line per variant · mode, one panel per function.',
    notes,
    legendLabel: 'variant · mode',
    plot: {
      height: 360,
      marginRight: functions.length > 1 ? 30 : 20,
      x: concurrencyAxis(points),
      y: logY ? { type: 'log', nice: true, label: yLabel, grid: true, tickFormat: '~s' } : { label: yLabel, grid: true, zero: true, tickFormat: '~s' },
      fx: { label: null, domain: functions },
      color: seriesColors(series),
      marks: [
        Plot.frame({ stroke: '#ddd' }),
        Plot.line(points, { fx: 'panel', x: 'concurrency', y: 'p50', stroke: 'series', z: 'series', strokeWidth: 1.8 }),
        Plot.ruleX(withCI, { fx: 'panel', x: 'concurrency', y1: 'ci95_median_lo', y2: 'ci95_median_hi', stroke: 'series', strokeWidth: 3, strokeOpacity: 0.6 }),
        Plot.dot(points, { fx: 'panel', x: 'concurrency', y: 'p50', fill: 'series', r: 3 }),
      ],
    },
  };
}

export interface LatencyVsConcurrencyOptions {
  name?: string;
  /** default 'latency' */
  metric?: string;
}

/** p50 (solid) and p99 (dashed) latency, log µs, against concurrency. */
export function latencyVsConcurrencyFigure(rows: readonly SummaryRow[], options: LatencyVsConcurrencyOptions = {}): Figure {
  const metric = options.metric ?? 'latency';
  const { points: raw, missing } = withConcurrency(rows, metric);
  const points = raw.map((p) => ({ ...scaleRow(p, microsPerUnit(p.unit)), series: p.series, concurrency: p.concurrency, panel: p.panel }));
  const functions = unique(points.map((p) => p.panel)).sort();
  const series = sortSeries(unique(points.map((p) => p.series)));
  const notes = [...cellNotes(rows.filter((r) => r.metric === '' || /(^|;)concurrency=/.test(r.params)), [metric]), ...missingNote(missing)];
  if (points.length === 0) notes.unshift('No measured cells.');
  return {
    name: options.name ?? 'latency-vs-concurrency',
    title: 'Latency under load',
    subtitle: 'Solid line and dot: p50; dashed line: p99. Log scale. One line per variant · mode, one panel per function.',
    notes,
    legendLabel: 'variant · mode',
    plot: {
      height: 360,
      x: concurrencyAxis(points),
      y: { type: 'log', nice: true, label: '↑ latency (µs, log scale)', grid: true, tickFormat: '~s' },
      fx: { label: null, domain: functions },
      color: seriesColors(series),
      marks: [
        Plot.frame({ stroke: '#ddd' }),
        Plot.line(points, { fx: 'panel', x: 'concurrency', y: 'p99', stroke: 'series', z: 'series', strokeDasharray: '5,3', strokeWidth: 1.5 }),
        Plot.line(points, { fx: 'panel', x: 'concurrency', y: 'p50', stroke: 'series', z: 'series', strokeWidth: 1.8 }),
        Plot.dot(points, { fx: 'panel', x: 'concurrency', y: 'p50', fill: 'series', r: 3 }),
        Plot.dot(points, { fx: 'panel', x: 'concurrency', y: 'p99', stroke: 'series', fill: 'white', r: 2.5 }),
      ],
    },
  };
}

/** Both load-test figures. */
export function throughputFigures(rows: readonly SummaryRow[]): Figure[] {
  return [throughputFigure(rows), latencyVsConcurrencyFigure(rows)];
}

// The sockmap experiment's figures: round-trip latency by payload size with and without the fast
// path (one panel per path: the platform's invocation round trip, the bare kernel hop), and
// throughput against concurrency (the shared throughput figures on the sockmap rows). The spliced
// series (path "splice": the gateway joined client and executor in the kernel) is drawn as a
// series of its own in the invocation panel, beside the relayed one and the baseline.
import * as Plot from '@observablehq/plot';
import type { SummaryRow } from '../results/schema.js';
import type { Figure } from './render.js';
import { cellNotes, microsPerUnit, okRows, scaleRow, seriesColors, seriesLabel, sortSeries, unique } from './common.js';
import { paramNumber } from './params.js';
import { latencyVsConcurrencyFigure, throughputFigure } from './throughput.js';

// The two arms side by side need two clearly different colours (the shared palette derives hue
// from the variant name and gave both wasm+* variants the same spare hue).
export const SPLICED_LABEL = 'wasm+sockmap spliced';
const ARM_COLORS: Record<string, string> = { 'wasm+sockmap · warm': '#2fa35a', [`${SPLICED_LABEL} · warm`]: '#1f6fb4', 'wasm+tcp · warm': '#8c8c8c' };
function armColors(series: readonly string[]): { domain: string[]; range: string[] } {
  const base = seriesColors(series);
  return { domain: base.domain, range: base.domain.map((s, i) => ARM_COLORS[s] ?? base.range[i]!) };
}
function recolor(f: Figure): Figure {
  const domain = (f.plot.color as { domain?: string[] } | undefined)?.domain ?? [];
  return { ...f, plot: { ...f.plot, color: armColors(domain) } };
}

const INVOCATION = 'invocation round trip (client → platform → executor → back)';
const PATHS: Record<string, string> = { gateway: INVOCATION, splice: INVOCATION, hop: 'kernel hop alone (native TCP ping-pong)' };

/** The spliced rows as a series of their own (figures key series by variant · mode). */
function splicedAsSeries(rows: readonly SummaryRow[]): SummaryRow[] {
  return rows.map((r) => (r.path === 'splice' ? { ...r, variant: SPLICED_LABEL } : r));
}

/** Median round trip (95% CI) against payload size, log axes, a line per arm, a panel per path. */
export function sockmapLatencyFigure(all: readonly SummaryRow[]): Figure {
  const rows = splicedAsSeries(all);
  const lat = okRows(rows, ['latency']).filter((r) => paramNumber(r.params, 'concurrency') === undefined && paramNumber(r.params, 'payload') !== undefined);
  const points = lat.map((r) => ({ ...scaleRow(r, microsPerUnit(r.unit)), series: seriesLabel(r), size: paramNumber(r.params, 'payload')!, panel: PATHS[r.path] ?? r.path }));
  points.sort((a, b) => a.size - b.size);
  const series = sortSeries(unique(points.map((p) => p.series)));
  const notes = cellNotes(rows.filter((r) => r.metric === '' || paramNumber(r.params, 'concurrency') === undefined), ['latency']);
  if (!points.length) notes.unshift('No measured cells.');
  const sizes = unique(points.map((p) => p.size)).sort((a, b) => a - b);
  return {
    name: 'sockmap-latency',
    title: 'Round trip with and without the sockmap fast path',
    subtitle: 'Median with its 95% CI (bar) by payload size; wasm+sockmap: sock_ops + sk_msg redirect to the peer, the gateway relays; spliced: the gateway joined client and executor in the kernel; wasm+tcp: the same cgroups and TCP path without programs.',
    notes,
    legendLabel: 'variant · mode',
    plot: {
      height: 360,
      x: { type: 'log', base: 2, label: 'payload (bytes, log₂) →', ticks: sizes, tickFormat: (d: number) => (d >= 1024 ? `${d / 1024} KiB` : `${d} B`), grid: true },
      y: { type: 'log', nice: true, label: '↑ round trip (µs, median, log scale)', grid: true, tickFormat: '~s' },
      fx: { label: null, domain: unique(points.map((p) => p.panel)) },
      color: armColors(series),
      marks: [
        Plot.frame({ stroke: '#ddd' }),
        Plot.line(points, { fx: 'panel', x: 'size', y: 'p50', stroke: 'series', z: 'series', strokeWidth: 1.8 }),
        Plot.ruleX(points.filter((p) => Number.isFinite(p.ci95_median_lo)), { fx: 'panel', x: 'size', y1: 'ci95_median_lo', y2: 'ci95_median_hi', stroke: 'series', strokeWidth: 3, strokeOpacity: 0.6 }),
        Plot.dot(points, { fx: 'panel', x: 'size', y: 'p50', fill: 'series', r: 3 }),
      ],
    },
  };
}

export function sockmapFigures(rows: readonly SummaryRow[]): Figure[] {
  const load = splicedAsSeries(rows).filter((r) => r.metric === '' || paramNumber(r.params, 'concurrency') !== undefined);
  return [
    sockmapLatencyFigure(rows),
    recolor({ ...throughputFigure(load), name: 'sockmap-throughput', title: 'Throughput with and without the sockmap fast path (64 B)' }),
    recolor({ ...latencyVsConcurrencyFigure(load), name: 'sockmap-latency-vs-concurrency' }),
  ];
}

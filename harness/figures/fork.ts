// Fork figures, from summary rows only (never measuring): time to the first verified response and
// fork latency against state size (log-log), one line per method · copy mode, with MITOSIS's and
// Faasm's PUBLISHED numbers as reference marks; forks per second against child nodes; bytes moved.
import * as Plot from '@observablehq/plot';
import type { SummaryRow } from '../results/schema.js';
import type { Figure } from './render.js';
import { cellNotes, okRows, unique } from './common.js';
import { parseParams } from './params.js';

const MiB = 2 ** 20;

/** Published reference numbers (shared/notes/anchors.md), not ours. */
export const PUBLISHED = {
  /** MITOSIS remote fork_resume over RDMA (mitosis-core docs/benchmarks), ms at state MiB */
  mitosisResume: [
    { mib: 1, ms: 2.9 },
    { mib: 64, ms: 3.3 },
    { mib: 256, ms: 4.6 },
    { mib: 1024, ms: 9.6 },
  ],
  /** Faasm (ATC'20): Proto-Faaslet restore ~0.5 ms; the paper gives no state size */
  faasmRestoreMs: 0.5,
  /** MITOSIS paper: more than 10,000 forks within a second from one parent */
  mitosisForksPerSecond: 10000,
};

type Point = SummaryRow & { series: string; mib: number };

/** Tableau 20: a run holds up to ~16 series (methods × copy modes), more than a 10-colour scheme tells apart */
const SERIES_COLOURS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac', '#a0cbe8', '#ffbe7d', '#8cd17d', '#b6992d', '#499894', '#d37295', '#fabfd2', '#d4a6c8', '#86bcb6', '#79706e'];

export function seriesOf(r: SummaryRow): string {
  const p = parseParams(r.params);
  const copy = p.copy && p.copy !== 'none' ? ` ${p.copy}${p.pool ? '+pool' : ''}` : '';
  return `${r.variant} · ${r.mode}${copy}${p.via === 'push' ? ' push' : ''}${r.path === 'tcp' ? ' (tcp)' : ''}`;
}

function points(rows: readonly SummaryRow[], metric: string): Point[] {
  return okRows(rows, [metric])
    .filter((r) => parseParams(r.params).state_bytes !== undefined && parseParams(r.params).children === undefined)
    .map((r) => ({ ...r, series: seriesOf(r), mib: Number(parseParams(r.params).state_bytes) / MiB }))
    .sort((a, b) => a.mib - b.mib);
}

function latencyFigure(rows: readonly SummaryRow[], metric: 'first_response' | 'fork_latency'): Figure {
  const pts = points(rows, metric).map((p) => ({ ...p, ms: p.p50 / 1000, lo: p.ci95_median_lo / 1000, hi: p.ci95_median_hi / 1000 }));
  const mitosis = PUBLISHED.mitosisResume.map((m) => ({ ...m, label: 'MITOSIS fork_resume (published, RDMA)' }));
  const series = unique(pts.map((p) => p.series)).sort();
  const notes = [...cellNotes(rows, [metric]), 'Grey crosses: MITOSIS remote fork_resume over RDMA, published (mitosis-core benchmarks), not measured here. Dashed line: Faasm Proto-Faaslet restore ~0.5 ms, published (ATC\'20), state size not stated.'];
  if (!pts.length) notes.unshift('No measured cells.');
  return {
    name: metric === 'first_response' ? 'fork-first-response' : 'fork-latency',
    title: metric === 'first_response' ? 'Fork to the first verified response, against state size' : 'Fork latency (instance ready, before the call), against state size',
    subtitle: 'Median with its 95% CI; log-log. local = in one process; tcp = a child node in another network namespace pulling from a parent node (push: the parent sends the pages beside the child\'s request); cold = compile + instantiate + the call that builds the state; warm = the cached instance\'s next call.',
    notes,
    legendLabel: 'runtime · method copy',
    plot: {
      height: 420,
      x: { type: 'log', label: 'state (MiB, log) →', grid: true },
      y: { type: 'log', label: '↑ ms (median, log)', grid: true },
      color: { type: 'ordinal', domain: series, range: SERIES_COLOURS },
      marks: [
        Plot.frame({ stroke: '#ddd' }),
        Plot.line(pts, { x: 'mib', y: 'ms', stroke: 'series', z: 'series', strokeWidth: 1.6 }),
        Plot.ruleX(pts.filter((p) => Number.isFinite(p.lo) && p.lo > 0), { x: 'mib', y1: 'lo', y2: 'hi', stroke: 'series', strokeWidth: 3, strokeOpacity: 0.5 }),
        Plot.dot(pts, { x: 'mib', y: 'ms', fill: 'series', r: 3 }),
        Plot.dot(mitosis, { x: 'mib', y: 'ms', symbol: 'times', stroke: '#777', r: 5 }),
        Plot.text(mitosis.slice(-1), { x: 'mib', y: 'ms', text: () => 'MITOSIS (published)', dy: -10, textAnchor: 'end', fill: '#555', fontSize: 10 }),
        Plot.ruleY([PUBLISHED.faasmRestoreMs], { stroke: '#999', strokeDasharray: '4,3' }),
        Plot.text([PUBLISHED.faasmRestoreMs], { y: (d: number) => d, frameAnchor: 'left', dx: 4, dy: -6, text: () => 'Faasm restore ~0.5 ms (published)', fill: '#555', fontSize: 10 }),
      ],
    },
  };
}

function fanoutFigure(rows: readonly SummaryRow[]): Figure {
  const pts = okRows(rows, ['forks_per_second'])
    .map((r) => ({ ...r, series: seriesOf(r), children: Number(parseParams(r.params).children), mib: Number(parseParams(r.params).state_bytes) / MiB }))
    .filter((p) => Number.isFinite(p.children))
    .sort((a, b) => a.children - b.children);
  const notes = [...cellNotes(rows, ['forks_per_second']), `Dashed line: MITOSIS, more than ${PUBLISHED.mitosisForksPerSecond.toLocaleString('en')} forks per second from one parent (paper, RDMA, published; not measured here).`];
  if (!pts.length) notes.unshift('No measured cells.');
  return {
    name: 'fork-fanout',
    title: 'Forks per second from one parent, against child nodes',
    subtitle: 'Every child forks back to back (dirty copy) for a fixed time; each answer verified. One parent node, children in namespaces of their own, all on this machine\'s 2 cores.',
    notes,
    legendLabel: 'state',
    plot: {
      height: 340,
      x: { label: 'child nodes →', ticks: unique(pts.map((p) => p.children)), grid: true },
      y: { type: 'log', label: '↑ verified forks/s (log)', grid: true },
      color: { type: 'ordinal', scheme: 'tableau10', domain: unique(pts.map((p) => `${p.mib} MiB`)) },
      marks: [
        Plot.frame({ stroke: '#ddd' }),
        Plot.line(pts, { x: 'children', y: 'p50', stroke: (p: { mib: number }) => `${p.mib} MiB` }),
        Plot.dot(pts, { x: 'children', y: 'p50', fill: (p: { mib: number }) => `${p.mib} MiB`, r: 3 }),
        Plot.ruleY([PUBLISHED.mitosisForksPerSecond], { stroke: '#999', strokeDasharray: '4,3' }),
        Plot.text([PUBLISHED.mitosisForksPerSecond], { y: (d: number) => d, frameAnchor: 'left', dx: 4, dy: -6, text: () => 'MITOSIS >10,000/s (published)', fill: '#555', fontSize: 10 }),
      ],
    },
  };
}

function bytesFigure(rows: readonly SummaryRow[]): Figure {
  const pts = points(rows, 'bytes_moved').map((p) => ({ ...p, movedMiB: p.p50 / MiB }));
  const notes = cellNotes(rows, ['bytes_moved']);
  if (!pts.length) notes.unshift('No measured cells.');
  return {
    name: 'fork-bytes',
    title: 'Bytes moved per fork, against state size',
    subtitle: 'eager moves the whole memory image; dirty the pages differing from the initial image (plus the header); prefetch the same in all, the working set before the answer. Local: bytes copied into the child.',
    notes,
    legendLabel: 'runtime · method copy',
    plot: {
      height: 340,
      x: { type: 'log', label: 'state (MiB, log) →', grid: true },
      y: { type: 'log', label: '↑ MiB moved per fork (log)', grid: true },
      color: { type: 'ordinal', domain: unique(pts.map((p) => p.series)).sort(), range: SERIES_COLOURS },
      marks: [Plot.frame({ stroke: '#ddd' }), Plot.line(pts, { x: 'mib', y: 'movedMiB', stroke: 'series', z: 'series' }), Plot.dot(pts, { x: 'mib', y: 'movedMiB', fill: 'series', r: 3 })],
    },
  };
}

export function forkFigures(rows: readonly SummaryRow[]): Figure[] {
  return [latencyFigure(rows, 'first_response'), latencyFigure(rows, 'fork_latency'), fanoutFigure(rows), bytesFigure(rows)];
}

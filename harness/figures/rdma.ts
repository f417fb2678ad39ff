// RDMA figures, from summary rows only: invocation round trip and throughput against payload size, one
// line per transport; remote fork over RDMA against TCP; the harness's verbs against perftest. Every
// figure names the substrate: numbers from the SoftRoCE guest's emulated CPU compare only with each other.
import * as Plot from '@observablehq/plot';
import type { SummaryRow } from '../results/schema.js';
import type { Figure } from './render.js';
import { cellNotes, okRows, unique } from './common.js';
import { parseParams } from './params.js';

const substrates = (rows: readonly SummaryRow[]) => unique(rows.map((r) => parseParams(r.params).substrate ?? 'unknown'));

function substrateNote(rows: readonly SummaryRow[]): string {
  const s = substrates(rows).join(', ') || 'none';
  return `Substrate: ${s}.${/guest/.test(s) ? ' An emulated CPU (QEMU TCG when so named): compare these numbers only with each other, not with native ones.' : ''}`;
}

function bySize(rows: readonly SummaryRow[], metric: string, name: string, title: string, yLabel: string, scale: (r: SummaryRow) => { y: number; lo: number; hi: number }, seriesOf: (r: SummaryRow) => string): Figure {
  const pts = okRows(rows, [metric])
    .map((r) => ({ ...r, size: Number(parseParams(r.params).size), series: seriesOf(r), ...scale(r) }))
    .filter((p) => Number.isFinite(p.size))
    .sort((a, b) => a.size - b.size);
  const notes = [...cellNotes(rows, [metric]), substrateNote(rows)];
  if (!pts.length) notes.unshift('No measured cells.');
  return {
    name,
    title,
    subtitle: 'Median with its 95% CI, log-log.',
    notes,
    legendLabel: 'series',
    plot: {
      height: 360,
      x: { type: 'log', label: 'payload (bytes, log) →', grid: true },
      y: { type: 'log', label: yLabel, grid: true },
      color: { type: 'ordinal', scheme: 'tableau10', domain: unique(pts.map((p) => p.series)).sort() },
      marks: [
        Plot.frame({ stroke: '#ddd' }),
        Plot.line(pts, { x: 'size', y: 'y', stroke: 'series', z: 'series', strokeWidth: 1.6 }),
        Plot.ruleX(pts.filter((p) => p.lo > 0), { x: 'size', y1: 'lo', y2: 'hi', stroke: 'series', strokeWidth: 3, strokeOpacity: 0.5 }),
        Plot.dot(pts, { x: 'size', y: 'y', fill: 'series', r: 3 }),
      ],
    },
  };
}

const us = (r: SummaryRow) => ({ y: r.p50, lo: r.ci95_median_lo, hi: r.ci95_median_hi });
/** harness · busy|event|js (how completions were waited for), or perftest */
const verbsSeries = (r: SummaryRow) => (r.variant === 'harness' ? `harness · ${parseParams(r.params).poll ?? '?'} poll` : r.variant);

function forkFigure(rows: readonly SummaryRow[]): Figure {
  const pts = okRows(rows, ['fork_latency', 'first_response'])
    .filter((r) => r.mode === 'remote-fork')
    .map((r) => ({ ...r, copy: parseParams(r.params).copy ?? '?', ms: r.p50 / 1000, lo: r.ci95_median_lo / 1000, hi: r.ci95_median_hi / 1000, what: `${r.metric} · ${parseParams(r.params).copy ?? '?'}` }));
  const notes = [...cellNotes(rows, ['fork_latency', 'first_response']), 'Over rdma the child pulls the parent\'s pages with one-sided RDMA READs (the parent\'s CPU is not involved); over tcp each read is a request the parent\'s agent answers.', substrateNote(rows)];
  if (!pts.length) notes.unshift('No measured cells.');
  return {
    name: 'rdma-fork',
    title: 'Remote fork of 1 MiB of state: RDMA against TCP',
    subtitle: 'Median with its 95% CI. fork_latency: instance ready; first_response: its verified answer.',
    notes,
    legendLabel: 'transport',
    plot: {
      height: 320,
      marginLeft: 150,
      x: { label: 'ms (median) →', grid: true },
      y: { label: null },
      color: { type: 'ordinal', scheme: 'tableau10', domain: unique(pts.map((p) => p.path)).sort() },
      fy: { label: null },
      marks: [
        Plot.frame({ stroke: '#ddd' }),
        Plot.barX(pts, { x: 'ms', y: 'path', fy: 'what', fill: 'path' }),
        Plot.ruleY(pts.filter((p) => p.lo > 0), { x1: 'lo', x2: 'hi', y: 'path', fy: 'what', stroke: '#333' }),
      ],
    },
  };
}

export function rdmaFigures(rows: readonly SummaryRow[]): Figure[] {
  const byPath = (r: SummaryRow) => `${r.variant} · ${r.path}`;
  return [
    bySize(rows, 'rpc_latency', 'rdma-rpc-latency', 'Invocation round trip (wasm chainstep, warm), RDMA against TCP', '↑ µs (median, log)', us, byPath),
    bySize(rows, 'rpc_throughput', 'rdma-rpc-throughput', 'Invocations per second (8 in flight), RDMA against TCP', '↑ requests/s (median, log)', us, byPath),
    ...(['write', 'read', 'send'] as const).map((op) =>
      bySize(rows, `${op}_latency`, `rdma-${op}-latency`, `RDMA ${op.toUpperCase()} latency: the harness (by how it polls) against ib_${op}_lat`, '↑ µs (median, log)', us, verbsSeries),
    ),
    bySize(rows, 'write_bw', 'rdma-write-bw', 'RDMA WRITE bandwidth: the harness against ib_write_bw', '↑ MB/s (log)', us, verbsSeries),
    forkFigure(rows),
  ];
}

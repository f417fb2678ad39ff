// The chains experiment's figure: end-to-end latency of a function chain against its length, one
// line per way (gateway, sockmap copy, sockmap + shared-memory descriptors, containers), one panel
// per payload size, log y. A second figure: CPU per request against chain length.
import * as Plot from '@observablehq/plot';
import type { SummaryRow } from '../results/schema.js';
import type { Figure } from './render.js';
import { cellNotes, microsPerUnit, okRows, scaleRow, unique } from './common.js';
import { paramNumber } from './params.js';

const WAY_COLORS: Record<string, string> = {
  'wasm+gateway': '#4c78a8',
  'wasm+sockmap': '#2fa35a',
  'wasm+sockmap+shm': '#e45756',
  'container+gateway': '#8c8c8c',
};
const ORDER = Object.keys(WAY_COLORS);
const sizeLabel = (d: number) => (d >= 1 << 20 ? `${d / (1 << 20)} MiB` : d >= 1024 ? `${d / 1024} KiB` : `${d} B`);

function byLength(rows: readonly SummaryRow[], metric: string, name: string, title: string, subtitle: string, yLabel: string): Figure {
  const pts = okRows(rows, [metric])
    .filter((r) => paramNumber(r.params, 'length') !== undefined && paramNumber(r.params, 'payload') !== undefined)
    .map((r) => ({ ...scaleRow(r, microsPerUnit(r.unit)), way: r.variant, length: paramNumber(r.params, 'length')!, size: paramNumber(r.params, 'payload')! }));
  pts.sort((a, b) => a.size - b.size || a.length - b.length);
  const sizes = unique(pts.map((p) => p.size)).sort((a, b) => a - b);
  const panels = sizes.map(sizeLabel);
  const points = pts.map((p) => ({ ...p, panel: sizeLabel(p.size) }));
  const ways = ORDER.filter((w) => points.some((p) => p.way === w));
  const notes = cellNotes(rows.filter((r) => r.metric === '' || r.metric === metric), [metric]);
  if (!points.length) notes.unshift('No measured cells.');
  const lengths = unique(points.map((p) => p.length)).sort((a, b) => a - b);
  return {
    name,
    title,
    subtitle,
    notes,
    legendLabel: 'way',
    plot: {
      height: 380,
      x: { type: 'log', base: 2, label: 'chain length (stages, log₂) →', ticks: lengths, grid: true },
      y: { type: 'log', nice: true, label: yLabel, grid: true, tickFormat: '~s' },
      fx: { label: null, domain: panels },
      color: { domain: ways, range: ways.map((w) => WAY_COLORS[w]!)  },
      marks: [
        Plot.frame({ stroke: '#ddd' }),
        Plot.line(points, { fx: 'panel', x: 'length', y: 'p50', stroke: 'way', z: 'way', strokeWidth: 1.8 }),
        Plot.ruleX(points.filter((p) => Number.isFinite(p.ci95_median_lo)), { fx: 'panel', x: 'length', y1: 'ci95_median_lo', y2: 'ci95_median_hi', stroke: 'way', strokeWidth: 3, strokeOpacity: 0.6 }),
        Plot.dot(points, { fx: 'panel', x: 'length', y: 'p50', fill: 'way', r: 3 }),
      ],
    },
  };
}

/** End-to-end latency vs chain length, a line per way, a panel per payload size. */
export function chainsLatencyFigure(rows: readonly SummaryRow[]): Figure {
  return byLength(rows, 'e2e', 'chains-e2e', 'Function chains: end-to-end latency against chain length',
    'Median with its 95% CI (bar), one panel per payload size. gateway: N round trips through the gateway; sockmap: direct node→node hops redirected by sk_msg; sockmap+shm: 16-byte descriptors redirected, payload in /dev/shm; containers: N gateway round trips to warm runc containers.',
    '↑ end-to-end latency (µs, median, log scale)');
}

/** CPU of the platform's processes per chain request against chain length. */
export function chainsCpuFigure(rows: readonly SummaryRow[]): Figure {
  return byLength(rows, 'cpu_per_request', 'chains-cpu', 'Function chains: CPU time per request',
    'Σ CPU of the gateway+executors+containers, or of the chain nodes, over a block of requests ÷ requests (the measuring client not counted).',
    '↑ CPU per request (µs, median over blocks, log scale)');
}

export function chainsFigures(rows: readonly SummaryRow[]): Figure[] {
  return [chainsLatencyFigure(rows), chainsCpuFigure(rows)];
}

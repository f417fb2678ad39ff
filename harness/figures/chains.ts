// The chains experiment's figures, drawn from summary rows (they never measure):
//   chains-e2e       end-to-end latency of a function chain against its length, a line per way
//                    (gateway, sockmap copy, sockmap + shared-memory descriptors, containers), a
//                    panel per payload size, log y;
//   chains-overhead  the same requests split in two: the time inside the functions (Σ stage_compute)
//                    and the rest (overhead = e2e − Σ stage_compute: transport and platform), a row
//                    each, with the median share of e2e outside the functions at the longest chain listed;
//   chains-cpu       CPU per request against chain length.
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

interface Point extends SummaryRow {
  way: string;
  length: number;
  size: number;
  panel: string;
}

/** ok rows of `metric` with length and payload params, times in µs (other units as they are), with their panel (payload size) */
function points(rows: readonly SummaryRow[], metric: string, time = true): Point[] {
  const pts = okRows(rows, [metric])
    .filter((r) => paramNumber(r.params, 'length') !== undefined && paramNumber(r.params, 'payload') !== undefined)
    .map((r) => {
      const size = paramNumber(r.params, 'payload')!;
      return { ...(time ? scaleRow(r, microsPerUnit(r.unit)) : r), way: r.variant, length: paramNumber(r.params, 'length')!, size, panel: sizeLabel(size) };
    });
  return pts.sort((a, b) => a.size - b.size || a.length - b.length);
}

const panelsOf = (pts: readonly Point[]) => unique([...pts].sort((a, b) => a.size - b.size).map((p) => p.panel));
const waysOf = (pts: readonly Point[]) => ORDER.filter((w) => pts.some((p) => p.way === w));
const lengthsOf = (pts: readonly Point[]) => unique(pts.map((p) => p.length)).sort((a, b) => a - b);

function byLength(rows: readonly SummaryRow[], metric: string, name: string, title: string, subtitle: string, yLabel: string): Figure {
  const pts = points(rows, metric);
  const ways = waysOf(pts);
  const notes = cellNotes(rows.filter((r) => r.metric === '' || r.metric === metric), [metric]);
  if (!pts.length) notes.unshift('No measured cells.');
  return {
    name,
    title,
    subtitle,
    notes,
    legendLabel: 'way',
    plot: {
      height: 380,
      x: { type: 'log', base: 2, label: 'chain length (stages, log₂) →', ticks: lengthsOf(pts), grid: true },
      y: { type: 'log', nice: true, label: yLabel, grid: true, tickFormat: '~s' },
      fx: { label: null, domain: panelsOf(pts) },
      color: { domain: ways, range: ways.map((w) => WAY_COLORS[w]!) },
      marks: [
        Plot.frame({ stroke: '#ddd' }),
        Plot.line(pts, { fx: 'panel', x: 'length', y: 'p50', stroke: 'way', z: 'way', strokeWidth: 1.8 }),
        Plot.ruleX(pts.filter((p) => Number.isFinite(p.ci95_median_lo)), { fx: 'panel', x: 'length', y1: 'ci95_median_lo', y2: 'ci95_median_hi', stroke: 'way', strokeWidth: 3, strokeOpacity: 0.6 }),
        Plot.dot(pts, { fx: 'panel', x: 'length', y: 'p50', fill: 'way', r: 3 }),
      ],
    },
  };
}

/** End-to-end latency vs chain length, a line per way, a panel per payload size. */
export function chainsLatencyFigure(rows: readonly SummaryRow[]): Figure {
  return byLength(rows, 'e2e', 'chains-e2e', 'Function chains: end-to-end latency against chain length',
    'Median with its 95% CI (bar), one panel per payload size. gateway: one request, the gateway calls the wasm executor N times over TCP (every hop executor → gateway → executor); sockmap: direct node→node hops redirected by sk_msg; sockmap+shm: 16-byte descriptors redirected, payload in /dev/shm; containers: as gateway, to warm runc containers.',
    '↑ end-to-end latency (µs, median, log scale)');
}

const PART_COMPUTE = 'Σ stage compute';
const PART_OVERHEAD = 'e2e − Σ compute';

/**
 * Where the time of a chain request goes: the time inside the functions (Σ of every stage's
 * stage_compute) and the rest (overhead: hops, copies, gateway, wake-ups), a row each, a panel per
 * payload size; each overhead panel lists, per way, the median share of e2e the overhead is at the
 * longest chain.
 */
export function chainsOverheadFigure(rows: readonly SummaryRow[]): Figure {
  const share = new Map(points(rows, 'overhead_share', false).map((p) => [`${p.way}|${p.size}|${p.length}`, p.p50]));
  const overhead = points(rows, 'overhead');
  const longest = new Map<string, number>();
  for (const p of overhead) longest.set(`${p.way}|${p.size}`, Math.max(p.length, longest.get(`${p.way}|${p.size}`) ?? 0));
  const parts = [
    ...points(rows, 'compute').map((p) => ({ ...p, part: PART_COMPUTE, label: '' })),
    ...overhead.map((p) => {
      const s = share.get(`${p.way}|${p.size}|${p.length}`);
      const label = s !== undefined && longest.get(`${p.way}|${p.size}`) === p.length ? `${s.toFixed(0)}% at N=${p.length}` : '';
      return { ...p, part: PART_OVERHEAD, label };
    }),
  ];
  const ways = waysOf(parts);
  // compute, overhead and overhead_share come from the same requests: the overhead cells speak for all three
  const notes = cellNotes(rows.filter((r) => r.metric === '' || r.metric === 'overhead'), ['overhead']);
  if (!parts.length) notes.unshift('No measured cells.');
  notes.unshift('Stage compute: the executor\'s serverNs through the gateway (for containers it includes the executor ↔ container pipe), the node\'s own time around its wasm call for the sockmap ways: the wasm variant\'s own invoke time in both. Labels (lower right of each overhead panel, in legend order): median share of e2e outside the functions at the longest chain.');
  return {
    name: 'chains-overhead',
    title: 'Function chains: time inside the functions and the overhead around them',
    subtitle: 'Per chain request, medians with 95% CI (bar); one column per payload size. Top: Σ over the stages of the time inside the function. Bottom: e2e − that sum, i.e. transport (hops, copies, the gateway) and the platform around the calls.',
    notes,
    legendLabel: 'way',
    plot: {
      height: 560,
      marginRight: 110,
      x: { type: 'log', base: 2, label: 'chain length (stages, log₂) →', ticks: lengthsOf(parts), grid: true },
      y: { type: 'log', nice: true, label: '↑ µs per request (median, log scale)', grid: true, tickFormat: '~s' },
      fx: { label: null, domain: panelsOf(parts) },
      fy: { label: null, domain: [PART_COMPUTE, PART_OVERHEAD] },
      color: { domain: ways, range: ways.map((w) => WAY_COLORS[w]!) },
      marks: [
        Plot.frame({ stroke: '#ddd' }),
        Plot.line(parts, { fx: 'panel', fy: 'part', x: 'length', y: 'p50', stroke: 'way', z: 'way', strokeWidth: 1.8 }),
        Plot.ruleX(parts.filter((p) => Number.isFinite(p.ci95_median_lo)), { fx: 'panel', fy: 'part', x: 'length', y1: 'ci95_median_lo', y2: 'ci95_median_hi', stroke: 'way', strokeWidth: 3, strokeOpacity: 0.6 }),
        Plot.dot(parts, { fx: 'panel', fy: 'part', x: 'length', y: 'p50', fill: 'way', r: 3 }),
        // a fixed stack in legend order in the panel's free lower-right corner: beside the points, close lines' labels overlapped
        ...ways.map((w, i) =>
          Plot.text(parts.filter((p) => p.label && p.way === w), { fx: 'panel', fy: 'part', frameAnchor: 'bottom-right', text: 'label', fill: 'way', dx: -4, dy: -4 - 11 * (ways.length - 1 - i), fontSize: 9 })),
      ],
    },
  };
}

/** CPU of the platform's processes per chain request against chain length. */
export function chainsCpuFigure(rows: readonly SummaryRow[]): Figure {
  return byLength(rows, 'cpu_per_request', 'chains-cpu', 'Function chains: CPU time per request',
    'Σ CPU of the gateway+executors+containers, or of the chain nodes, over a block of requests ÷ requests (the measuring client not counted).',
    '↑ CPU per request (µs, median over blocks, log scale)');
}

export function chainsFigures(rows: readonly SummaryRow[]): Figure[] {
  return [chainsLatencyFigure(rows), chainsOverheadFigure(rows), chainsCpuFigure(rows)];
}

// The parallel experiment's figures, from summary rows only: scaling (speed-up against threads per
// kernel, ideal and the oversubscribed region marked), the WASM/native ratio per kernel and its
// geometric mean against the two published references, and the fan-out completion time.
import * as Plot from '@observablehq/plot';
import type { SummaryRow } from '../results/schema.js';
import type { Figure } from './render.js';
import { cellNotes, unique } from './common.js';
import { PUBLISHED_RATIOS, parallelPoints, wasmNativeRatios } from './parallel-derive.js';
import { fanoutFigure } from './parallel-fanout.js';

const COLORS: Record<string, string> = { native: '#e8830c', wasm: '#8db8ee', 'wasm-simd': '#3b7dd8', 'wasm-threads': '#0b2a52', 'wasm-threads (thread-spawn)': '#7b52c7', ebpf: '#2fa35a' };
const colorScale = (domain: string[]) => ({ domain, range: domain.map((d) => COLORS[d] ?? '#888') });

function parallelRows(rows: readonly SummaryRow[]): SummaryRow[] {
  return rows.filter((r) => r.path !== 'gateway-fanout');
}

function scalingFigure(rows: readonly SummaryRow[], cores: number): Figure {
  // per kernel, its largest size
  const all = parallelPoints(rows).filter((p) => Number.isFinite(p.speedup));
  const largest = new Map<string, number>();
  for (const p of all) largest.set(p.kernel, Math.max(largest.get(p.kernel) ?? 0, p.size));
  const pts = all.filter((p) => p.size === largest.get(p.kernel)).map((p) => ({ ...p, panel: `${p.kernel} (size ${p.size})` }));
  const maxT = Math.max(1, ...pts.map((p) => p.threads));
  const ideal = unique(pts.map((p) => p.panel)).flatMap((panel) => unique(pts.map((p) => p.threads)).sort((a, b) => a - b).map((t) => ({ panel, threads: t, speedup: Math.min(t, cores) })));
  const notes = [...cellNotes(parallelRows(rows), ['time']), `Speed-up = the variant's own one-thread median ÷ its median at t threads. Dashed: ideal (t up to the ${cores} CPUs, flat beyond). Grey band: oversubscribed (more threads than CPUs). wasm and wasm-simd run one thread only and are in the ratio figure.`];
  if (!pts.length) notes.unshift('No measured cells.');
  return {
    name: 'parallel-scaling',
    title: 'Parallel scaling: speed-up against threads, per kernel (largest size)',
    subtitle: 'Median time of one parallel run with threads already started; native = pthreads, wasm-threads = workers over one shared memory, ebpf = BPF_PROG_RUN per thread, pinned.',
    notes,
    legendLabel: 'implementation',
    plot: {
      height: 460,
      fx: { label: null },
      x: { type: 'log', base: 2, label: 'threads (log₂) →', grid: true },
      y: { label: '↑ speed-up over one thread', grid: true },
      color: colorScale(unique(pts.map((p) => p.variant)).sort()),
      marks: [
        Plot.rectX(maxT > cores ? unique(pts.map((p) => p.panel)).map((panel) => ({ panel })) : [], { fx: 'panel', x1: cores, x2: maxT, fill: '#eee' }),
        Plot.frame({ stroke: '#ddd' }),
        Plot.line(ideal, { fx: 'panel', x: 'threads', y: 'speedup', stroke: '#999', strokeDasharray: '4,3' }),
        Plot.line(pts, { fx: 'panel', x: 'threads', y: 'speedup', stroke: 'variant', z: 'variant' }),
        Plot.dot(pts, { fx: 'panel', x: 'threads', y: 'speedup', fill: 'variant', r: 3 }),
      ],
    },
  };
}

function ratioFigure(rows: readonly SummaryRow[]): Figure {
  const ratios = wasmNativeRatios(parallelPoints(rows));
  const kernels = unique(ratios.map((r) => r.kernel)).filter((k) => k !== 'geomean').sort();
  const { notSoFast, leapsAndBounds } = PUBLISHED_RATIOS;
  const notes = [
    ...cellNotes(parallelRows(rows), ['time']),
    `Ratio = WASM median ÷ native median at the kernel's largest size: wasm and wasm-simd one thread against native one thread; wasm-threads at the most threads not oversubscribed, against native at as many. geomean = geometric mean over the kernels. Right of 1 WASM is slower.`,
    `Grey band: ${notSoFast.label}, SPEC, not measured here. Dashed line: ${leapsAndBounds.label}, x86-64, not measured here. Native is clang -O2 (auto-vectorised with SSE2), so the scalar WASM build is set against vector code.`,
  ];
  if (!ratios.length) notes.unshift('No cells measured on both sides.');
  return {
    name: 'parallel-ratio',
    title: 'WASM ÷ native time per kernel, and the geometric mean',
    subtitle: 'Median ratio (log scale); the published references are drawn as reference marks, labelled.',
    notes,
    legendLabel: 'WASM build',
    plot: {
      height: 60 + 48 * (kernels.length + 1),
      marginLeft: 90,
      x: { type: 'log', label: 'WASM ÷ native (log) →', grid: true, tickFormat: (d: number) => `${+d.toPrecision(2)}×` },
      y: { domain: [...kernels, 'geomean'], label: null },
      color: colorScale(unique(ratios.map((r) => r.variant)).sort()),
      marks: [
        Plot.rectX([notSoFast], { x1: 'lo', x2: 'hi', fill: '#ccc', fillOpacity: 0.6 }),
        Plot.ruleX([1], { stroke: '#333' }),
        Plot.ruleX([leapsAndBounds.at], { stroke: '#777', strokeDasharray: '4,3' }),
        Plot.text([notSoFast], { x: 'hi', frameAnchor: 'top', text: () => 'Not So Fast (published)', dx: 4, textAnchor: 'start', fill: '#555', fontSize: 10 }),
        Plot.text([leapsAndBounds], { x: 'at', frameAnchor: 'bottom', text: () => 'Leaps and bounds ≤1.2× (published)', dx: -4, textAnchor: 'end', fill: '#555', fontSize: 10 }),
        Plot.dot(ratios, { x: 'ratio', y: 'kernel', fill: 'variant', r: 5, dy: 0 }),
        Plot.text(ratios, { x: 'ratio', y: 'kernel', text: (r: { ratio: number }) => `${r.ratio.toFixed(2)}×`, dy: -10, fontSize: 9, fill: '#333' }),
      ],
    },
  };
}

export function parallelFigures(rows: readonly SummaryRow[], cores: number): Figure[] {
  return [scalingFigure(rows, cores), ratioFigure(rows), fanoutFigure(rows)];
}

// Ratios of medians with their bootstrap 95% CI (harness/results/comparison.ts rows): one row per
// function and comparison, a log axis, a line at 1. Used for the cold-start ratios (container ÷
// each WASM cold mode); never measures.
import * as Plot from '@observablehq/plot';
import type { ComparisonRow } from '../results/comparison.js';
import { ratioTicks } from './compare.js';
import type { Figure } from './render.js';
import { unique } from './common.js';

const WIDTH = 720;
const fmt = (x: number) => (Number.isFinite(x) ? `${+x.toPrecision(x >= 100 ? 3 : 2)}×` : '–');

export function ratioFigure(rows: readonly ComparisonRow[], o: { name: string; title: string; subtitle: string; notes?: string[] }): Figure {
  const drawn = rows.filter((r) => Number.isFinite(r.ratio) && r.ratio > 0);
  const data = drawn.map((r) => ({ ...r, label: `${r.function} · ${r.path} · ${r.numerator} ÷ ${r.denominator}`, pair: `${r.numerator} ÷ ${r.denominator}` }));
  const notes = [...(o.notes ?? [])];
  const missing = rows.filter((r) => !(Number.isFinite(r.ratio) && r.ratio > 0));
  if (missing.length) notes.push(`Not drawn (one side not measured): ${missing.map((r) => `${r.function} ${r.path} ${r.numerator} ÷ ${r.denominator}`).join('; ')}`);
  if (!data.length) notes.unshift('No ratio could be computed: one side of every comparison was not measured.');
  const xs = [1, ...data.flatMap((d) => [d.ratio, d.ratio_ci95_lo, d.ratio_ci95_hi])].filter((x) => Number.isFinite(x) && x > 0);
  const lo = Math.min(...xs) / 1.1;
  const hi = Math.max(...xs) * 1.15;
  const labels = unique(data.map((d) => d.label));
  const pairs = unique(data.map((d) => d.pair));
  const marginLeft = Math.min(420, Math.max(150, Math.round(Math.max(0, ...labels.map((l) => l.length)) * 6.2) + 12));
  return {
    name: o.name,
    title: o.title,
    subtitle: o.subtitle,
    notes,
    legendLabel: 'ratio',
    plot: {
      width: WIDTH,
      height: Math.max(140, labels.length * 20 + 70),
      marginLeft,
      marginRight: 140,
      x: { type: 'log', domain: [lo, hi], ticks: ratioTicks(lo, hi, WIDTH - marginLeft - 140), label: 'ratio of medians (log scale) →', grid: true, tickFormat: (x: number) => `${+x.toPrecision(2)}×` },
      y: { label: null, domain: labels },
      color: { domain: pairs },
      marks: [
        Plot.frame({ stroke: '#ddd' }),
        Plot.ruleX([1], { stroke: '#333', strokeDasharray: '4,3' }),
        Plot.ruleY(data, { y: 'label', x1: 'ratio_ci95_lo', x2: 'ratio_ci95_hi', stroke: 'pair', strokeWidth: 5, strokeOpacity: 0.45 }),
        Plot.dot(data, { y: 'label', x: 'ratio', fill: 'pair', stroke: 'white', r: 4 }),
        Plot.text(data, { y: 'label', x: (d: ComparisonRow) => (Number.isFinite(d.ratio_ci95_hi) ? d.ratio_ci95_hi : d.ratio), text: (d: ComparisonRow) => `${fmt(d.ratio)} [${fmt(d.ratio_ci95_lo)}, ${fmt(d.ratio_ci95_hi)}]`, textAnchor: 'start', dx: 6, fontSize: 9, fill: '#444' }),
      ],
    },
  };
}

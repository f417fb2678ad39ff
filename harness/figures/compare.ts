// Run B against run A: per cell the ratio of medians B/A (dot) with its bootstrap 95% CI (bar) on a
// log axis, a line at 1 (no change). Colour says whether the CI excludes 1 and in which direction.
import * as Plot from '@observablehq/plot';
import type { CompareRow } from '../results/compare-runs.js';
import type { Figure } from './render.js';
import { cellLabels, fmtRatio } from '../results/compare-text.js';
import { unique } from './common.js';

const WIDTH = 720;

const VERDICT_COLORS: Record<string, string> = {
  faster: '#2a9d57',
  smaller: '#2a9d57',
  slower: '#d1495b',
  larger: '#d1495b',
  lower: '#3b7dd8',
  higher: '#e8830c',
  same: '#777777',
  'n/a': '#bbbbbb',
};

/** Smallest gap between two tick labels, in pixels ("0.95×" is about 30 px at 10 px). */
export const MIN_TICK_GAP_PX = 38;

/**
 * Tick values a reader can name (1×, 2×, 0.5×, 0.9× …) inside [lo, hi] for an axis `pixels` wide:
 * taken in order of roundness, each only if it keeps MIN_TICK_GAP_PX from those already taken.
 */
export function ratioTicks(lo: number, hi: number, pixels: number): number[] {
  const decades: number[] = [];
  for (const m of [1, 2, 5]) for (let e = -4; e <= 4; e++) decades.push(+(m * 10 ** e).toPrecision(1));
  const byRoundness = [1, ...decades, 1.5, 0.8, 0.9, 1.2, 1.1, 0.7, 0.6, 3, 0.3, 0.95, 1.05, 0.98, 1.02, 0.99, 1.01];
  const pxPerLog = pixels / Math.log(hi / lo);
  const taken: number[] = [];
  for (const t of byRoundness) {
    if (t < lo || t > hi || taken.includes(t)) continue;
    if (taken.every((u) => Math.abs(Math.log(t / u)) * pxPerLog >= MIN_TICK_GAP_PX)) taken.push(t);
  }
  return taken.sort((x, y) => x - y);
}

export interface CompareFigureOptions {
  name?: string;
  /** how A and B are named in the subtitle, e.g. "20261201-… (commit 0512c72)" */
  aLabel: string;
  bLabel: string;
  iterations: number;
  seed: number;
  /** lines under the plot (cells in one folder only, a forced comparison's differences) */
  notes?: string[];
}

/** The ratio figure from compareRuns' rows; cells in one folder only are not drawn, they belong in `notes`. */
export function compareFigure(rows: readonly CompareRow[], o: CompareFigureOptions): Figure {
  const both = rows.filter((r) => r.in === 'both' && Number.isFinite(r.ratio) && r.ratio > 0);
  const labels = cellLabels(both);
  const data = both.map((r, i) => ({ ...r, label: labels[i] as string }));
  const withCI = data.filter((d) => Number.isFinite(d.ratio_ci95_lo) && d.ratio_ci95_lo > 0 && Number.isFinite(d.ratio_ci95_hi));
  const notes = [...(o.notes ?? [])];
  const undrawn = rows.filter((r) => r.in === 'both' && !(Number.isFinite(r.ratio) && r.ratio > 0));
  if (undrawn.length) notes.unshift(`Not drawn (no positive ratio): ${undrawn.map((r) => `${r.variant}/${r.function}/${r.mode} ${r.path} ${r.metric}`).join('; ')}`);
  if (data.length === 0) notes.unshift('No cell was measured in both folders.');
  const xs = [1, ...data.map((d) => d.ratio), ...withCI.flatMap((d) => [d.ratio_ci95_lo, d.ratio_ci95_hi])];
  const lo = Math.min(...xs) / 1.03;
  const hi = Math.max(...xs) * 1.03;
  const verdicts = unique(data.map((d) => d.verdict));
  const longest = Math.max(0, ...labels.map((l) => l.length));
  const marginLeft = Math.min(460, Math.max(120, Math.round(longest * 6.3) + 16));
  const marginRight = 130;
  return {
    name: o.name ?? 'compare',
    title: 'B ÷ A: ratio of medians per cell',
    subtitle:
      `A = ${o.aLabel}; B = ${o.bLabel}. ● median(B) ÷ median(A), bar: percentile-bootstrap 95% CI (${o.iterations} resamples, seed ${o.seed}); ` +
      `dashed line at 1 = no change, left of it B is lower. A colour other than grey: the CI excludes 1.`,
    notes,
    legendLabel: 'B against A',
    plot: {
      height: Math.max(140, data.length * 24 + 70),
      width: WIDTH,
      marginLeft,
      marginRight,
      x: { type: 'log', domain: [lo, hi], ticks: ratioTicks(lo, hi, WIDTH - marginLeft - marginRight), label: 'median(B) ÷ median(A) (log scale) →', grid: true, tickFormat: (x: number) => `${+x.toPrecision(2)}×` },
      y: { label: null, domain: labels },
      color: { domain: verdicts, range: verdicts.map((v) => VERDICT_COLORS[v] ?? '#555555') },
      marks: [
        Plot.frame({ stroke: '#ddd' }),
        Plot.ruleX([1], { stroke: '#333', strokeDasharray: '4,3' }),
        Plot.ruleY(withCI, { y: 'label', x1: 'ratio_ci95_lo', x2: 'ratio_ci95_hi', stroke: 'verdict', strokeWidth: 6, strokeOpacity: 0.45 }),
        Plot.dot(data, { y: 'label', x: 'ratio', fill: 'verdict', stroke: 'white', r: 4 }),
        Plot.text(data, {
          y: 'label',
          x: (d: CompareRow) => (Number.isFinite(d.ratio_ci95_hi) ? Math.max(d.ratio, d.ratio_ci95_hi) : d.ratio),
          text: (d: CompareRow) => `${fmtRatio(d.ratio)} [${fmtRatio(d.ratio_ci95_lo)}, ${fmtRatio(d.ratio_ci95_hi)}]`,
          textAnchor: 'start',
          dx: 8,
          fontSize: 9,
          fill: '#444',
        }),
      ],
    },
  };
}

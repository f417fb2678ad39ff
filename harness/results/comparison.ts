// A vs B per function: ratio of medians with a seeded percentile-bootstrap 95% CI (effect size,
// as Sightglass reports it), from raw samples; with several --runs, a t CI over the per-run ratios.
import * as fs from 'node:fs';
import { bootstrapRatioCI, median, runMediansCI95 } from '../measure/stats.js';
import type { Rng } from '../measure/random.js';
import { csvText } from './raw-writer.js';
import type { RawRow } from './schema.js';

export interface Side {
  variant: string;
  mode: string;
}

export interface ComparisonRow {
  metric: string;
  path: string;
  params: string;
  function: string;
  unit: string;
  numerator: string;
  denominator: string;
  median_numerator: number;
  median_denominator: number;
  /** median(numerator) / median(denominator) */
  ratio: number;
  ratio_ci95_lo: number;
  ratio_ci95_hi: number;
  n_numerator: number;
  n_denominator: number;
  /** runs (--runs) measured on both sides; with 2 or more the CI is over the per-run ratios */
  runs: number;
}
export const COMPARISON_COLUMNS = [
  'metric', 'path', 'params', 'function', 'unit', 'numerator', 'denominator', 'median_numerator',
  'median_denominator', 'ratio', 'ratio_ci95_lo', 'ratio_ci95_hi', 'n_numerator', 'n_denominator', 'runs',
] as const satisfies readonly (keyof ComparisonRow)[];

export interface CompareOptions {
  rows: readonly RawRow[];
  metric: string;
  path: string;
  numerator: Side;
  denominator: Side;
  rng: Rng;
  /** bootstrap resamples; default 2000 */
  iterations?: number;
}

const label = (s: Side) => `${s.variant}/${s.mode}`;

/**
 * One row per (function, params) present on both sides, in first-appearance order. Functions
 * present on one side only get a row with NaN ratio and n=0 on the missing side.
 */
export function compareMedians(o: CompareOptions): ComparisonRow[] {
  type Cell = { function: string; params: string; unit: string; num: number[]; den: number[]; numByRun: Map<number, number[]>; denByRun: Map<number, number[]> };
  const add = (m: Map<number, number[]>, run: number, v: number) => {
    const a = m.get(run);
    if (a) a.push(v);
    else m.set(run, [v]);
  };
  const cells = new Map<string, Cell>();
  for (const r of o.rows) {
    if (r.metric !== o.metric || r.path !== o.path || !Number.isFinite(r.value)) continue;
    const isNum = r.variant === o.numerator.variant && r.mode === o.numerator.mode;
    const isDen = r.variant === o.denominator.variant && r.mode === o.denominator.mode;
    if (!isNum && !isDen) continue;
    const k = JSON.stringify([r.function, r.params]);
    let c = cells.get(k);
    if (!c) cells.set(k, (c = { function: r.function, params: r.params, unit: r.unit, num: [], den: [], numByRun: new Map(), denByRun: new Map() }));
    const run = Number.isFinite(r.run) ? (r.run as number) : 1;
    if (isNum) (c.num.push(r.value), add(c.numByRun, run, r.value));
    if (isDen) (c.den.push(r.value), add(c.denByRun, run, r.value));
  }
  const out: ComparisonRow[] = [];
  for (const c of cells.values()) {
    // Several runs: each run gives its own ratio (both sides measured in it), and the CI is over those,
    // as the summary's median CI is over run medians. One run: a bootstrap over the samples.
    const both = [...c.numByRun.keys()].filter((r) => c.denByRun.has(r));
    const boot = bootstrapRatioCI(c.num, c.den, median, { rng: o.rng, iterations: o.iterations ?? 2000 });
    const perRun = both.length >= 2 ? runMediansCI95(both.map((r) => [median(c.numByRun.get(r)!) / median(c.denByRun.get(r)!)])) : undefined;
    const ci = perRun ? { ratio: boot.ratio, lo: perRun.lo, hi: perRun.hi } : boot;
    out.push({
      metric: o.metric,
      path: o.path,
      params: c.params,
      function: c.function,
      unit: c.unit,
      numerator: label(o.numerator),
      denominator: label(o.denominator),
      median_numerator: median(c.num),
      median_denominator: median(c.den),
      ratio: ci.ratio,
      ratio_ci95_lo: ci.lo,
      ratio_ci95_hi: ci.hi,
      n_numerator: c.num.length,
      n_denominator: c.den.length,
      runs: both.length,
    });
  }
  return out;
}

export function writeComparisonCsv(file: string, rows: readonly ComparisonRow[], options: { overwrite?: boolean } = {}): void {
  fs.writeFileSync(file, csvText(rows, COMPARISON_COLUMNS, true), { flag: options.overwrite ? 'w' : 'wx' });
}

// A vs B per function: ratio of medians with a seeded percentile-bootstrap 95% CI (effect size,
// as Sightglass reports it), from raw samples.
import * as fs from 'node:fs';
import { bootstrapRatioCI, median } from '../measure/stats.js';
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
}
export const COMPARISON_COLUMNS = [
  'metric', 'path', 'params', 'function', 'unit', 'numerator', 'denominator', 'median_numerator',
  'median_denominator', 'ratio', 'ratio_ci95_lo', 'ratio_ci95_hi', 'n_numerator', 'n_denominator',
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
  type Cell = { function: string; params: string; unit: string; num: number[]; den: number[] };
  const cells = new Map<string, Cell>();
  for (const r of o.rows) {
    if (r.metric !== o.metric || r.path !== o.path || !Number.isFinite(r.value)) continue;
    const isNum = r.variant === o.numerator.variant && r.mode === o.numerator.mode;
    const isDen = r.variant === o.denominator.variant && r.mode === o.denominator.mode;
    if (!isNum && !isDen) continue;
    const k = JSON.stringify([r.function, r.params]);
    let c = cells.get(k);
    if (!c) cells.set(k, (c = { function: r.function, params: r.params, unit: r.unit, num: [], den: [] }));
    if (isNum) c.num.push(r.value);
    if (isDen) c.den.push(r.value);
  }
  const out: ComparisonRow[] = [];
  for (const c of cells.values()) {
    const ci = bootstrapRatioCI(c.num, c.den, median, { rng: o.rng, iterations: o.iterations ?? 2000 });
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
    });
  }
  return out;
}

export function writeComparisonCsv(file: string, rows: readonly ComparisonRow[], options: { overwrite?: boolean } = {}): void {
  fs.writeFileSync(file, csvText(rows, COMPARISON_COLUMNS, true), { flag: options.overwrite ? 'w' : 'wx' });
}

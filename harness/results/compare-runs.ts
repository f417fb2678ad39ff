// Run B against run A, cell by cell: ratio of medians B/A with a seeded percentile-bootstrap 95% CI
// (as comparison.ts does within one run), and whether the CI excludes 1. When both folders hold
// several --runs, the CI is a Welch t interval over the two sides' run medians instead.
import * as fs from 'node:fs';
import { MIN_N_MEDIAN_CI, bootstrapRatioCI, median, runsRatioCI95 } from '../measure/stats.js';
import { createRng } from '../measure/random.js';
import { csvText } from './raw-writer.js';
import type { RawRow, SummaryRow } from './schema.js';

/** What makes two samples the same cell. Listed here, not taken from GROUP_COLUMNS, so columns
 *  added to raw.csv later (e.g. a repetition number) pool instead of splitting cells. */
export const CELL_COLUMNS = ['experiment', 'variant', 'function', 'mode', 'path', 'metric', 'params', 'unit'] as const;
export type CellKey = Pick<RawRow, (typeof CELL_COLUMNS)[number]>;

/** B relative to A: lower/higher when the CI excludes 1, same when it holds 1, n/a without a CI. */
export type Change = 'lower' | 'higher' | 'same' | 'n/a';

export interface CompareRow extends CellKey {
  /** both, or the one folder the cell was measured in */
  in: 'both' | 'a only' | 'b only';
  n_a: number;
  n_b: number;
  median_a: number;
  median_b: number;
  /** median(B) / median(A) */
  ratio: number;
  ratio_ci95_lo: number;
  ratio_ci95_hi: number;
  /** the CI excludes 1; undefined (empty) without a CI */
  distinguishable: boolean | undefined;
  change: Change;
  /** change in the metric's own words: faster/slower (times, rates), smaller/larger (memory), else lower/higher; or same, n/a */
  verdict: string;
  note: string;
}
export const COMPARE_COLUMNS = [
  ...CELL_COLUMNS, 'in', 'n_a', 'n_b', 'median_a', 'median_b', 'ratio', 'ratio_ci95_lo', 'ratio_ci95_hi',
  'distinguishable', 'change', 'verdict', 'note',
] as const satisfies readonly (keyof CompareRow)[];

export interface CompareRunsOptions {
  /** bootstrap seed; each cell's generator is derived from it and the cell key, so a cell's CI
   *  does not depend on which other cells the folders hold */
  seed: number;
  /** bootstrap resamples; default 2000 */
  iterations?: number;
}

const TIME_UNITS = new Set(['ns', 'us', 'µs', 'μs', 'ms', 's']);
const MEMORY_UNITS = new Set(['B', 'bytes', 'kB', 'KiB', 'KB', 'MiB', 'MB', 'GiB']);

/** The words for lower and higher in this unit: a lower time is faster, a higher rate is faster. */
export function directionWords(unit: string): { lower: string; higher: string } {
  if (TIME_UNITS.has(unit)) return { lower: 'faster', higher: 'slower' };
  if (/\/s$/.test(unit)) return { lower: 'slower', higher: 'faster' };
  if (MEMORY_UNITS.has(unit)) return { lower: 'smaller', higher: 'larger' };
  return { lower: 'lower', higher: 'higher' };
}

/** lower/higher only when the whole CI is on one side of 1; a CI needs MIN_N_MEDIAN_CI samples a side. */
export function changeOf(ci: { lo: number; hi: number }, nA: number, nB: number): Change {
  if (nA < MIN_N_MEDIAN_CI || nB < MIN_N_MEDIAN_CI) return 'n/a';
  if (!Number.isFinite(ci.lo) || !Number.isFinite(ci.hi)) return 'n/a';
  if (ci.hi < 1) return 'lower';
  if (ci.lo > 1) return 'higher';
  return 'same';
}

export function cellKeyString(c: CellKey): string {
  return JSON.stringify(CELL_COLUMNS.map((k) => c[k]));
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

interface Cell {
  key: CellKey;
  values: number[];
  byRun: Map<number, number[]>;
  dropped: number;
}

/** Finite samples per cell, in first-appearance order; non-finite values are counted, not used. */
export function cellsOf(rows: readonly RawRow[]): Map<string, Cell> {
  const cells = new Map<string, Cell>();
  for (const r of rows) {
    const k = cellKeyString(r);
    let c = cells.get(k);
    if (!c) {
      const key = {} as Record<string, string>;
      for (const col of CELL_COLUMNS) key[col] = r[col];
      cells.set(k, (c = { key: key as unknown as CellKey, values: [], byRun: new Map(), dropped: 0 }));
    }
    if (Number.isFinite(r.value)) {
      c.values.push(r.value);
      const run = Number.isFinite(r.run) ? (r.run as number) : 1;
      const inRun = c.byRun.get(run);
      if (inRun) inRun.push(r.value);
      else c.byRun.set(run, [r.value]);
    } else c.dropped++;
  }
  return cells;
}

/**
 * One row per cell of A (in A's order), then the cells only B has. A cell in both gets the ratio
 * and its CI; a cell in one folder only gets a row with n=0 on the other side and no ratio.
 */
export function compareRuns(a: readonly RawRow[], b: readonly RawRow[], o: CompareRunsOptions): CompareRow[] {
  const ca = cellsOf(a);
  const cb = cellsOf(b);
  const out: CompareRow[] = [];
  const dropNote = (side: string, c: Cell | undefined) => (c?.dropped ? [`${c.dropped} non-finite values in ${side} left out`] : []);
  for (const [k, x] of ca) {
    const y = cb.get(k);
    if (!y) {
      out.push(oneSided(x.key, 'a only', x.values, [], dropNote('A', x)));
      continue;
    }
    const notes = [...dropNote('A', x), ...dropNote('B', y)];
    const rng = createRng((o.seed ^ fnv1a(k)) >>> 0);
    const boot = bootstrapRatioCI(y.values, x.values, median, { rng, iterations: o.iterations ?? 2000 });
    const runMedians = (c: Cell) => [...c.byRun.values()].map((v) => median(v));
    const runsCI = x.byRun.size >= 2 && y.byRun.size >= 2 ? runsRatioCI95(runMedians(y), runMedians(x)) : undefined;
    const ci = runsCI && Number.isFinite(runsCI.lo) ? { ratio: boot.ratio, lo: runsCI.lo, hi: runsCI.hi } : boot;
    if (ci !== boot) notes.push(`CI over the run medians (${x.byRun.size} runs in A, ${y.byRun.size} in B)`);
    const change = changeOf(ci, x.values.length, y.values.length);
    if (x.values.length < MIN_N_MEDIAN_CI || y.values.length < MIN_N_MEDIAN_CI) notes.push(`too few samples for a verdict (n < ${MIN_N_MEDIAN_CI})`);
    else if (change === 'n/a') notes.push('no finite CI (a median of 0?)');
    const words = directionWords(x.key.unit);
    out.push({
      ...x.key,
      in: 'both',
      n_a: x.values.length,
      n_b: y.values.length,
      median_a: median(x.values),
      median_b: median(y.values),
      ratio: ci.ratio,
      ratio_ci95_lo: ci.lo,
      ratio_ci95_hi: ci.hi,
      distinguishable: change === 'n/a' ? undefined : change !== 'same',
      change,
      verdict: change === 'lower' ? words.lower : change === 'higher' ? words.higher : change,
      note: notes.join('; '),
    });
  }
  for (const [k, y] of cb) if (!ca.has(k)) out.push(oneSided(y.key, 'b only', [], y.values, dropNote('B', y)));
  return out;
}

function oneSided(key: CellKey, where: 'a only' | 'b only', va: number[], vb: number[], notes: string[]): CompareRow {
  return {
    ...key,
    in: where,
    n_a: va.length,
    n_b: vb.length,
    median_a: va.length ? median(va) : NaN,
    median_b: vb.length ? median(vb) : NaN,
    ratio: NaN,
    ratio_ci95_lo: NaN,
    ratio_ci95_hi: NaN,
    distinguishable: undefined,
    change: 'n/a',
    verdict: 'n/a',
    note: [`measured in ${where === 'a only' ? 'A' : 'B'} only`, ...notes].join('; '),
  };
}

/** Write compare.csv; NaN and an undefined `distinguishable` are empty fields. Never overwrites. */
export function writeCompareCsv(file: string, rows: readonly CompareRow[]): void {
  const records = rows.map((r) => ({ ...r, distinguishable: r.distinguishable === undefined ? '' : r.distinguishable }));
  fs.writeFileSync(file, csvText(records, COMPARE_COLUMNS, true), { flag: 'wx' });
}

/** Marks rows whose cell failed in either run (its samples end at the failure) from summary.csv. */
export function noteFailures(rows: CompareRow[], summaryA: readonly SummaryRow[], summaryB: readonly SummaryRow[]): void {
  const failed = (s: readonly SummaryRow[]) => new Map(s.filter((r) => r.status === 'failed').map((r) => [cellKeyString(r), r.note]));
  const fa = failed(summaryA);
  const fb = failed(summaryB);
  for (const r of rows) {
    const k = cellKeyString(r);
    const extra = [fa.has(k) ? `failed in A: ${fa.get(k)}` : '', fb.has(k) ? `failed in B: ${fb.get(k)}` : ''].filter(Boolean);
    if (extra.length) r.note = [r.note, ...extra].filter(Boolean).join('; ');
  }
}

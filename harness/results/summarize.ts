// summary.csv: one row per group of raw samples, plus one row per skipped or failed cell,
// so nothing planned is silently missing from a table or figure.
import * as fs from 'node:fs';
import { describe, isNoisy, runMediansCI95 } from '../measure/stats.js';
import { csvText, parseCsv, parseNumber, recordsToObjects } from './raw-writer.js';
import {
  GROUP_COLUMNS,
  SUMMARY_COLUMNS,
  type RawRow,
  type Skip,
  type SummaryRow,
  type SummaryStatus,
} from './schema.js';

/** A cell that started but failed. The cell key is required; path/metric/params/unit narrow it. */
export interface Failure {
  experiment: string;
  variant: string;
  function: string;
  mode: string;
  path?: string;
  metric?: string;
  params?: string;
  unit?: string;
  reason: string;
}

type GroupKey = Pick<RawRow, (typeof GROUP_COLUMNS)[number]>;

export function groupKey(row: GroupKey): string {
  return JSON.stringify(GROUP_COLUMNS.map((c) => row[c]));
}

const EMPTY_STATS = {
  n: 0,
  mean: NaN,
  sd: NaN,
  min: NaN,
  p50: NaN,
  p90: NaN,
  p99: NaN,
  p999: NaN,
  max: NaN,
  ci95_mean_lo: NaN,
  ci95_mean_hi: NaN,
  ci95_median_lo: NaN,
  ci95_median_hi: NaN,
  cv: NaN,
  noisy: false,
  runs: 0,
  run_medians_sd: NaN,
  ci95_median_iid_lo: NaN,
  ci95_median_iid_hi: NaN,
} as const;

function matchesFailure(key: GroupKey, f: Failure): boolean {
  return (
    key.experiment === f.experiment &&
    key.variant === f.variant &&
    key.function === f.function &&
    key.mode === f.mode &&
    (f.path === undefined || key.path === f.path) &&
    (f.metric === undefined || key.metric === f.metric) &&
    (f.params === undefined || key.params === f.params) &&
    (f.unit === undefined || key.unit === f.unit)
  );
}

/**
 * Group raw rows by GROUP_COLUMNS (first-appearance order) and describe each group. Samples
 * with a non-finite value are left out of the statistics and counted in the note.
 * A failure that matches measured groups marks them status=failed (stats are over the samples
 * taken before the failure); a failure with no samples, and every skip, becomes its own row with
 * n=0, empty statistics, and the reason in `note`. Skip rows carry path/metric/params/unit ''.
 */
export function summarize(rows: readonly RawRow[], skips: readonly Skip[] = [], failures: readonly Failure[] = []): SummaryRow[] {
  const groups = new Map<string, { key: GroupKey; values: number[]; byRun: Map<number, number[]>; dropped: number }>();
  for (const r of rows) {
    const k = groupKey(r);
    let g = groups.get(k);
    if (!g) {
      const key = {} as Record<string, string>;
      for (const c of GROUP_COLUMNS) key[c] = r[c];
      g = { key: key as unknown as GroupKey, values: [], byRun: new Map(), dropped: 0 };
      groups.set(k, g);
    }
    if (Number.isFinite(r.value)) {
      g.values.push(r.value);
      const run = Number.isFinite(r.run) ? (r.run as number) : 1;
      let inRun = g.byRun.get(run);
      if (!inRun) g.byRun.set(run, (inRun = []));
      inRun.push(r.value);
    } else g.dropped++;
  }

  const out: SummaryRow[] = [];
  const usedFailures = new Set<Failure>();
  for (const g of groups.values()) {
    const notes: string[] = [];
    let status: SummaryStatus = 'ok';
    for (const f of failures) {
      if (matchesFailure(g.key, f)) {
        status = 'failed';
        notes.push(`failed after ${g.values.length} samples: ${f.reason}`);
        usedFailures.add(f);
      }
    }
    if (g.dropped) notes.push(`${g.dropped} non-finite values left out`);
    out.push({ ...g.key, status, ...describeRuns(g.values, [...g.byRun.values()]), note: notes.join('; ') });
  }
  for (const f of failures) {
    if (usedFailures.has(f)) continue;
    out.push({
      experiment: f.experiment,
      variant: f.variant,
      function: f.function,
      mode: f.mode,
      path: f.path ?? '',
      metric: f.metric ?? '',
      params: f.params ?? '',
      unit: f.unit ?? '',
      status: 'failed',
      ...EMPTY_STATS,
      note: f.reason,
    });
  }
  for (const s of skips) {
    out.push({
      experiment: s.experiment,
      variant: s.variant,
      function: s.function,
      mode: s.mode,
      path: '',
      metric: '',
      params: '',
      unit: '',
      status: 'skipped',
      ...EMPTY_STATS,
      note: s.reason,
    });
  }
  return out;
}

/** describe() over all samples, with the median CI over run medians when there are several runs. */
function describeRuns(values: number[], runs: number[][]): Omit<SummaryRow, keyof GroupKey | 'status' | 'note'> {
  const d = describe(values);
  const iid = { ci95_median_iid_lo: d.ci95_median_lo, ci95_median_iid_hi: d.ci95_median_hi };
  if (runs.length < 2) return { ...d, runs: runs.length, run_medians_sd: NaN, ...iid };
  const ci = runMediansCI95(runs);
  const out = { ...d, ci95_median_lo: ci.lo, ci95_median_hi: ci.hi, runs: runs.length, run_medians_sd: ci.sd, ...iid };
  return { ...out, noisy: isNoisy(out) };
}

export interface WriteOptions {
  /** replace an existing file; default false (throws instead) */
  overwrite?: boolean;
}

/** Write summary rows; NaN is written as an empty field, noisy as true/false. */
export function writeSummaryCsv(file: string, rows: readonly SummaryRow[], options: WriteOptions = {}): void {
  fs.writeFileSync(file, csvText(rows, SUMMARY_COLUMNS, true), { flag: options.overwrite ? 'w' : 'wx' });
}

/** columns added with --runs: optional when reading older files */
const RUN_COLUMNS = new Set<string>(['runs', 'run_medians_sd', 'ci95_median_iid_lo', 'ci95_median_iid_hi']);

const SUMMARY_TEXT_COLUMNS = new Set<string>([...GROUP_COLUMNS, 'status', 'note']);

export function readSummaryCsv(file: string): SummaryRow[] {
  const { records } = parseCsv(fs.readFileSync(file, 'utf8'));
  const { rows } = recordsToObjects(records, SUMMARY_COLUMNS.filter((c) => !RUN_COLUMNS.has(c)), file);
  return rows.map((o) => {
    const row = {} as Record<string, string | number | boolean>;
    for (const c of SUMMARY_COLUMNS) {
      const t = o[c] as string;
      if (c === 'noisy') row[c] = t === 'true';
      else if (t === undefined) row[c] = c === 'runs' ? 1 : NaN; // a summary written before --runs
      else if (SUMMARY_TEXT_COLUMNS.has(c)) row[c] = t;
      else row[c] = parseNumber(t);
    }
    return row as unknown as SummaryRow;
  });
}

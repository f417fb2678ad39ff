// Column contract of the CSV files every run writes. Notebooks and figures read these names.

/** raw.csv: one row per sample (long format). */
export interface RawRow {
  experiment: string;
  variant: string;
  function: string;
  mode: string;
  /** how the sample was taken: "in-process", "gateway-binary", "gateway-http", "load" ... */
  path: string;
  /** e.g. cold_start, latency, throughput, rss, pss */
  metric: string;
  /** extra parameters as k=v pairs joined by ';' (e.g. "concurrency=4;scale=small"), "" if none */
  params: string;
  iteration: number;
  value: number;
  unit: string;
}
export const RAW_COLUMNS = [
  'experiment', 'variant', 'function', 'mode', 'path', 'metric', 'params', 'iteration', 'value', 'unit',
] as const satisfies readonly (keyof RawRow)[];

/** The grouping key of a summary row: every raw column but iteration, value. */
export const GROUP_COLUMNS = [
  'experiment', 'variant', 'function', 'mode', 'path', 'metric', 'params', 'unit',
] as const satisfies readonly (keyof RawRow)[];

export type SummaryStatus = 'ok' | 'skipped' | 'failed';

/** summary.csv: one row per group; skipped and failed cells appear too, with the reason in `note`. */
export interface SummaryRow {
  experiment: string;
  variant: string;
  function: string;
  mode: string;
  path: string;
  metric: string;
  params: string;
  unit: string;
  status: SummaryStatus;
  n: number;
  mean: number;
  sd: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  ci95_mean_lo: number;
  ci95_mean_hi: number;
  ci95_median_lo: number;
  ci95_median_hi: number;
  cv: number;
  noisy: boolean;
  note: string;
}
export const SUMMARY_COLUMNS = [
  'experiment', 'variant', 'function', 'mode', 'path', 'metric', 'params', 'unit', 'status',
  'n', 'mean', 'sd', 'min', 'p50', 'p90', 'p99', 'p999', 'max',
  'ci95_mean_lo', 'ci95_mean_hi', 'ci95_median_lo', 'ci95_median_hi', 'cv', 'noisy', 'note',
] as const satisfies readonly (keyof SummaryRow)[];

/** A cell of the plan that did not run, and why. */
export interface Skip {
  experiment: string;
  variant: string;
  function: string;
  mode: string;
  reason: string;
}

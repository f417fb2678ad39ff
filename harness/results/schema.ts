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
  /** which of the run's K independent repetitions (--runs) took the sample, from 1; absent in files
   *  written before --runs existed, read as 1 */
  run?: number;
}
export const RAW_COLUMNS = [
  'experiment', 'variant', 'function', 'mode', 'path', 'metric', 'params', 'iteration', 'value', 'unit', 'run',
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
  /** the 95% CI of the median the figures draw: over the run medians when runs > 1, else distribution-free over the samples */
  ci95_median_lo: number;
  ci95_median_hi: number;
  cv: number;
  noisy: boolean;
  /** independent repetitions (--runs) the samples came from */
  runs: number;
  /** sd of the run medians: the between-run spread (NaN for one run) */
  run_medians_sd: number;
  /** the distribution-free median CI over all samples as if independent (equal to ci95_median_* for one run) */
  ci95_median_iid_lo: number;
  ci95_median_iid_hi: number;
  note: string;
}
export const SUMMARY_COLUMNS = [
  'experiment', 'variant', 'function', 'mode', 'path', 'metric', 'params', 'unit', 'status',
  'n', 'mean', 'sd', 'min', 'p50', 'p90', 'p99', 'p999', 'max',
  'ci95_mean_lo', 'ci95_mean_hi', 'ci95_median_lo', 'ci95_median_hi', 'cv', 'noisy',
  'runs', 'run_medians_sd', 'ci95_median_iid_lo', 'ci95_median_iid_hi', 'note',
] as const satisfies readonly (keyof SummaryRow)[];

/** A cell of the plan that did not run, and why. */
export interface Skip {
  experiment: string;
  variant: string;
  function: string;
  mode: string;
  reason: string;
}

// Pure statistics over number[]. Nothing here reads a clock, a file or Math.random.
import { createRng, randomInt, type Rng } from './random.js';

/** A cell is flagged noisy when the half-width of its 95% median CI exceeds this fraction of the median. */
export const NOISY_MEDIAN_CI_REL_HALF_WIDTH = 0.1;
/** Below this many samples no distribution-free 95% median CI exists (0.5^5·2 > 0.05). */
export const MIN_N_MEDIAN_CI = 6;

/** Ascending copy (numeric order; NaN last). */
export function sortedCopy(values: readonly number[]): number[] {
  return Array.from(Float64Array.from(values).sort());
}

export function sum(values: readonly number[]): number {
  // Neumaier compensated summation: exact enough for millions of ns-sized samples.
  let s = 0;
  let c = 0;
  for (const v of values) {
    const t = s + v;
    c += Math.abs(s) >= Math.abs(v) ? s - t + v : v - t + s;
    s = t;
  }
  return s + c;
}

/** Arithmetic mean; NaN for an empty array. */
export function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : sum(values) / values.length;
}

/** Sample standard deviation (divisor n-1); NaN when n < 2. */
export function sd(values: readonly number[]): number {
  const n = values.length;
  if (n < 2) return NaN;
  const m = mean(values);
  let acc = 0;
  for (const v of values) acc += (v - m) * (v - m);
  return Math.sqrt(acc / (n - 1));
}

/** Coefficient of variation sd/|mean|; NaN when undefined. */
export function cv(values: readonly number[]): number {
  const m = mean(values);
  const s = sd(values);
  return m === 0 ? NaN : s / Math.abs(m);
}

/**
 * Quantile by linear interpolation between order statistics — R's `quantile(type = 7)`, also
 * numpy's default: with x sorted ascending and 0-based, h = (n-1)·p, the result is
 * x[⌊h⌋] + (h-⌊h⌋)·(x[⌊h⌋+1] - x[⌊h⌋]). p=0 gives the min, p=1 the max. NaN for an empty array.
 */
export function quantile(values: readonly number[], p: number): number {
  return quantileSorted(sortedCopy(values), p);
}

/** quantile() for an array already sorted ascending. */
export function quantileSorted(xs: readonly number[], p: number): number {
  const n = xs.length;
  if (n === 0 || !(p >= 0 && p <= 1)) return NaN;
  const h = (n - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  const a = xs[lo] as number;
  const b = xs[hi] as number;
  return a + (h - lo) * (b - a);
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

// Two-sided 95% Student t critical values t(0.975, df) for df = 1..30.
const T975 = [
  12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157, 2.228139,
  2.200985, 2.178813, 2.160369, 2.144787, 2.13145, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963,
  2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407, 2.04523, 2.042272,
];
const Z975 = 1.959963984540054;

/**
 * t(0.975, df): exact table for df ≤ 30 (linear interpolation for fractional df), above that the
 * Cornish–Fisher expansion of t in powers of 1/df around z = 1.95996 (error < 1e-5 for df > 30).
 * NaN for df < 1.
 */
export function tCritical975(df: number): number {
  if (!(df >= 1)) return NaN;
  if (df <= 30) {
    const lo = Math.floor(df);
    const a = T975[lo - 1] as number;
    if (lo === df || lo === 30) return a;
    const b = T975[lo] as number;
    return a + (df - lo) * (b - a);
  }
  if (!Number.isFinite(df)) return Z975;
  const z = Z975;
  const z3 = z ** 3;
  const z5 = z ** 5;
  const z7 = z ** 7;
  return (
    z +
    (z3 + z) / (4 * df) +
    (5 * z5 + 16 * z3 + 3 * z) / (96 * df ** 2) +
    (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * df ** 3)
  );
}

export interface Interval {
  lo: number;
  hi: number;
}

/** 95% CI of the mean, Student t with n-1 df; NaN bounds when n < 2. */
export function meanCI95(values: readonly number[]): Interval {
  const n = values.length;
  if (n < 2) return { lo: NaN, hi: NaN };
  const m = mean(values);
  const half = (tCritical975(n - 1) * sd(values)) / Math.sqrt(n);
  return { lo: m - half, hi: m + half };
}

/**
 * Order-statistic ranks (1-based) [k, n-k+1] of the distribution-free 95% CI for the median:
 * k is the largest rank with P(Binomial(n, ½) ≤ k-1) ≤ 0.025, so coverage is ≥ 95%
 * (exactly 1 - 2·P(B ≤ k-1)). Returns undefined when n < 6: then even [min, max] covers < 95%.
 */
export function medianCIRanks(n: number): { lower: number; upper: number; coverage: number } | undefined {
  if (n < MIN_N_MEDIAN_CI) return undefined;
  // Binomial(n, ½) pmf in log space so large n does not underflow 0.5^n.
  const logHalfN = n * Math.log(0.5);
  let logPmf = logHalfN; // j = 0
  let cdf = 0;
  let k = 0; // number of ranks j (0-based) with cumulative ≤ 0.025
  for (let j = 0; j < n; j++) {
    const next = cdf + Math.exp(logPmf);
    if (next > 0.025) break;
    cdf = next;
    k = j + 1;
    logPmf += Math.log((n - j) / (j + 1));
  }
  if (k === 0) return undefined;
  return { lower: k, upper: n - k + 1, coverage: 1 - 2 * cdf };
}

/**
 * Distribution-free 95% CI of the median from binomial order statistics (no normality assumed).
 * For n < 6 no such interval reaches 95% coverage, so the bounds are NaN (written as empty).
 */
export function medianCI95(values: readonly number[]): Interval {
  const r = medianCIRanks(values.length);
  if (!r) return { lo: NaN, hi: NaN };
  const xs = sortedCopy(values);
  return { lo: xs[r.lower - 1] as number, hi: xs[r.upper - 1] as number };
}

/** Everything a SummaryRow needs from one cell's samples. */
export interface Description {
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
}

/**
 * Noisy when the 95% median CI half-width > NOISY_MEDIAN_CI_REL_HALF_WIDTH·|median|: the median is
 * the number the figures plot, so the flag says it is imprecise. Not the cv: a latency tail raises
 * the cv of a cell whose median is exact (it flagged 78% of a 200-rep chains run). n < 6 has no
 * median CI and is not flagged here; figures list such cells on their own.
 */
export function isNoisy(d: Pick<Description, 'p50' | 'ci95_median_lo' | 'ci95_median_hi'>): boolean {
  const half = (d.ci95_median_hi - d.ci95_median_lo) / 2;
  return half > NOISY_MEDIAN_CI_REL_HALF_WIDTH * Math.abs(d.p50);
}

export function describe(values: readonly number[]): Description {
  const xs = sortedCopy(values);
  const n = xs.length;
  const m = mean(xs);
  const s = sd(xs);
  const mci = meanCI95(xs);
  const r = medianCIRanks(n);
  const d: Description = {
    n,
    mean: m,
    sd: s,
    min: n ? (xs[0] as number) : NaN,
    p50: quantileSorted(xs, 0.5),
    p90: quantileSorted(xs, 0.9),
    p99: quantileSorted(xs, 0.99),
    p999: quantileSorted(xs, 0.999),
    max: n ? (xs[n - 1] as number) : NaN,
    ci95_mean_lo: mci.lo,
    ci95_mean_hi: mci.hi,
    ci95_median_lo: r ? (xs[r.lower - 1] as number) : NaN,
    ci95_median_hi: r ? (xs[r.upper - 1] as number) : NaN,
    cv: m === 0 ? NaN : s / Math.abs(m),
    noisy: false,
  };
  d.noisy = isNoisy(d);
  return d;
}

/**
 * The median of K independent runs (each with its own processes and seeded order): samples within a
 * run come in blocks and drift, so a CI that treats them as independent is too narrow. This one is a
 * Student-t 95% CI over the K run medians (K-1 degrees of freedom). Run-to-run noise in latency is
 * multiplicative, so for positive medians the interval is taken on their logarithms (a geometric
 * mean ± t·sd, which stays positive); otherwise on the medians themselves. `sd` is the between-run
 * spread of the medians. NaN bounds for K < 2.
 */
export function runMediansCI95(runs: readonly (readonly number[])[]): Interval & { medians: number[]; sd: number } {
  const medians = runs.filter((r) => r.length > 0).map((r) => median(r));
  const k = medians.length;
  if (k < 2) return { lo: NaN, hi: NaN, medians, sd: NaN };
  const t = tCritical975(k - 1) / Math.sqrt(k);
  if (medians.every((m) => m > 0)) {
    const logs = medians.map(Math.log);
    const m = mean(logs);
    const h = t * sd(logs);
    return { lo: Math.exp(m - h), hi: Math.exp(m + h), medians, sd: sd(medians) };
  }
  const m = mean(medians);
  const h = t * sd(medians);
  return { lo: m - h, hi: m + h, medians, sd: sd(medians) };
}

/**
 * Ratio of two quantities each measured as K independent run medians (K ≥ 2 on both sides, all
 * positive): exp of the difference of the mean log medians, with a Welch t 95% CI on the logarithms
 * (Welch–Satterthwaite degrees of freedom). Runs of two separate folders are not paired.
 */
export function runsRatioCI95(numMedians: readonly number[], denMedians: readonly number[]): Interval & { ratio: number } {
  const none = { ratio: NaN, lo: NaN, hi: NaN };
  if (numMedians.length < 2 || denMedians.length < 2 || ![...numMedians, ...denMedians].every((m) => m > 0)) return none;
  const ln = numMedians.map(Math.log);
  const ld = denMedians.map(Math.log);
  const va = sd(ln) ** 2 / ln.length;
  const vb = sd(ld) ** 2 / ld.length;
  const diff = mean(ln) - mean(ld);
  const se = Math.sqrt(va + vb);
  if (se === 0) return { ratio: Math.exp(diff), lo: Math.exp(diff), hi: Math.exp(diff) };
  const df = (va + vb) ** 2 / (va ** 2 / (ln.length - 1) + vb ** 2 / (ld.length - 1));
  const h = tCritical975(Math.max(1, Math.floor(df))) * se;
  return { ratio: Math.exp(diff), lo: Math.exp(diff - h), hi: Math.exp(diff + h) };
}

export interface RatioCI {
  /** stat(a) / stat(b) on the full samples */
  ratio: number;
  /** 2.5th and 97.5th percentiles (type 7) of the bootstrap ratios */
  lo: number;
  hi: number;
  iterations: number;
}

export interface BootstrapOptions {
  /** resamples; default 2000 */
  iterations?: number;
  /** the random source; default createRng(DEFAULT_BOOTSTRAP_SEED) so results are reproducible */
  rng?: Rng;
}
export const DEFAULT_BOOTSTRAP_SEED = 0x5eed;

function resample(xs: readonly number[], out: number[], rng: Rng): number[] {
  for (let i = 0; i < xs.length; i++) out[i] = xs[randomInt(xs.length, rng)] as number;
  return out;
}

/**
 * Percentile-bootstrap 95% CI of stat(a)/stat(b): a and b are resampled independently with
 * replacement `iterations` times. Deterministic for a given rng seed. NaN when either is empty.
 */
export function bootstrapRatioCI(
  a: readonly number[],
  b: readonly number[],
  stat: (values: readonly number[]) => number = median,
  options: BootstrapOptions = {},
): RatioCI {
  const iterations = options.iterations ?? 2000;
  const rng = options.rng ?? createRng(DEFAULT_BOOTSTRAP_SEED);
  if (a.length === 0 || b.length === 0) return { ratio: NaN, lo: NaN, hi: NaN, iterations: 0 };
  const ratio = stat(a) / stat(b);
  const bufA = new Array<number>(a.length);
  const bufB = new Array<number>(b.length);
  const ratios: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const r = stat(resample(a, bufA, rng)) / stat(resample(b, bufB, rng));
    if (!Number.isNaN(r)) ratios.push(r);
  }
  ratios.sort((x, y) => x - y);
  return { ratio, lo: quantileSorted(ratios, 0.025), hi: quantileSorted(ratios, 0.975), iterations };
}

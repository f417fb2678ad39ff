import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bootstrapRatioCI,
  cv,
  describe as describeValues,
  mean,
  meanCI95,
  median,
  medianCI95,
  medianCIRanks,
  quantile,
  sd,
  tCritical975,
} from '../harness/measure/stats.js';
import { createRng, shuffle } from '../harness/measure/random.js';

const close = (actual: number, expected: number, tol: number, what = '') =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what} expected ${expected} ± ${tol}, got ${actual}`);

const X = [2, 4, 4, 4, 5, 5, 7, 9];
const ONE_TO_TEN = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

test('mean and sample sd of the textbook set', () => {
  assert.equal(mean(X), 5);
  close(sd(X), 2.138089935, 1e-9, 'sd');
  assert.ok(Number.isNaN(mean([])));
  assert.ok(Number.isNaN(sd([3])));
  close(cv(ONE_TO_TEN), 0.5504818826, 1e-9, 'cv');
});

test('quantile is R type 7', () => {
  close(quantile(ONE_TO_TEN, 0.9), 9.1, 1e-12);
  close(quantile(ONE_TO_TEN, 0.25), 3.25, 1e-12);
  close(quantile(X, 0.99), 8.86, 1e-12);
  assert.equal(quantile(X, 0.5), 4.5);
  assert.equal(quantile([3, 1, 2], 0.5), 2); // unsorted input
  assert.equal(quantile(X, 0), 2);
  assert.equal(quantile(X, 1), 9);
  assert.equal(quantile([5], 0.37), 5);
  assert.ok(Number.isNaN(quantile([], 0.5)));
  assert.ok(Number.isNaN(quantile(X, 1.5)));
  assert.equal(median([10, 1, 100]), 10);
});

test('t critical values', () => {
  close(tCritical975(1), 12.706, 5e-4, 'df=1');
  close(tCritical975(2), 4.303, 5e-4, 'df=2');
  close(tCritical975(10), 2.228, 5e-4, 'df=10');
  close(tCritical975(30), 2.042, 5e-4, 'df=30');
  close(tCritical975(31), 2.039513, 2e-5, 'df=31');
  close(tCritical975(60), 2.000298, 2e-5, 'df=60');
  close(tCritical975(120), 1.979930, 2e-5, 'df=120');
  close(tCritical975(1e6), 1.96, 5e-4, 'df=1e6');
  close(tCritical975(Infinity), 1.959964, 1e-6, 'df=inf');
  assert.ok(Number.isNaN(tCritical975(0)));
});

test('mean CI uses t with n-1 df', () => {
  const ci = meanCI95(X);
  close(ci.lo, 5 - 1.787487728, 1e-6);
  close(ci.hi, 5 + 1.787487728, 1e-6);
  assert.ok(Number.isNaN(meanCI95([1]).lo));
});

test('median CI from binomial order statistics', () => {
  assert.deepEqual(medianCI95(ONE_TO_TEN), { lo: 2, hi: 9 });
  const twenty = Array.from({ length: 20 }, (_, i) => 20 - i); // unsorted
  assert.deepEqual(medianCI95(twenty), { lo: 6, hi: 15 });
  assert.deepEqual(medianCIRanks(100)?.lower, 40);
  assert.deepEqual(medianCIRanks(100)?.upper, 61);
  close(medianCIRanks(10)?.coverage ?? 0, 1 - 2 * 0.0107421875, 1e-12);
  assert.deepEqual(medianCI95([1, 2, 3, 4, 5, 6]), { lo: 1, hi: 6 });
  const small = medianCI95([1, 2, 3, 4, 5]);
  assert.ok(Number.isNaN(small.lo) && Number.isNaN(small.hi), 'n < 6 has no 95% median CI');
  // large n stays finite (0.5^n underflows without log-space)
  const big = medianCIRanks(5000);
  assert.ok(big && big.lower > 2400 && big.upper < 2600 && big.coverage >= 0.95);
});

test('describe gives every SummaryRow statistic and the noisy flag', () => {
  const d = describeValues(ONE_TO_TEN);
  assert.equal(d.n, 10);
  assert.equal(d.mean, 5.5);
  assert.equal(d.min, 1);
  assert.equal(d.max, 10);
  assert.equal(d.p50, 5.5);
  close(d.p90, 9.1, 1e-12);
  close(d.p99, 9.91, 1e-12);
  close(d.p999, 9.991, 1e-12);
  assert.equal(d.ci95_median_lo, 2);
  assert.equal(d.ci95_median_hi, 9);
  assert.equal(d.noisy, true); // median CI ±3.5 of 5.5
  const tight = describeValues(Array.from({ length: 10 }, (_, i) => 100 + i));
  assert.equal(tight.noisy, false); // median CI ±3.5 of 104.5
  // cv small but the median CI half-width > 10% of the median: noisy
  const bimodal = describeValues([100, 100, 100, 100, 100, 130, 130, 130, 130, 130]);
  assert.ok(bimodal.cv < 0.25);
  assert.equal(bimodal.noisy, true);
  // a latency tail: cv > 1, yet the median is known to ±1%: not noisy
  const tail = describeValues([...Array.from({ length: 190 }, (_, i) => 100 + (i % 3)), ...Array.from({ length: 10 }, () => 5000)]);
  assert.ok(tail.cv > 1, `cv ${tail.cv}`);
  assert.equal(tail.noisy, false);
  const empty = describeValues([]);
  assert.equal(empty.n, 0);
  assert.ok(Number.isNaN(empty.p50));
  assert.equal(empty.noisy, false);
});

test('rng and shuffle are deterministic', () => {
  const a = createRng(42);
  const b = createRng(42);
  const seqA = Array.from({ length: 5 }, a);
  assert.deepEqual(seqA, Array.from({ length: 5 }, b));
  assert.notDeepEqual(seqA, Array.from({ length: 5 }, createRng(43)));
  assert.ok(seqA.every((v) => v >= 0 && v < 1));
  const items = Array.from({ length: 20 }, (_, i) => i);
  const s1 = shuffle(items, createRng(7));
  assert.deepEqual(s1, shuffle(items, createRng(7)));
  assert.notDeepEqual(s1, items);
  assert.deepEqual([...s1].sort((x, y) => x - y), items);
  assert.deepEqual(items, Array.from({ length: 20 }, (_, i) => i), 'input untouched');
});

test('bootstrap ratio CI: seeded, deterministic, and covers the true ratio', () => {
  const gen = createRng(1);
  const a = Array.from({ length: 200 }, () => 200 + 20 * (gen() - 0.5));
  const b = Array.from({ length: 200 }, () => 100 + 10 * (gen() - 0.5));
  const r1 = bootstrapRatioCI(a, b, median, { iterations: 1000, rng: createRng(11) });
  const r2 = bootstrapRatioCI(a, b, median, { iterations: 1000, rng: createRng(11) });
  const r3 = bootstrapRatioCI(a, b, median, { iterations: 1000, rng: createRng(12) });
  assert.deepEqual(r1, r2);
  assert.notDeepEqual([r1.lo, r1.hi], [r3.lo, r3.hi]);
  assert.equal(r1.ratio, median(a) / median(b));
  assert.ok(r1.lo < 2 && 2 < r1.hi, `true ratio 2 in [${r1.lo}, ${r1.hi}]`);
  assert.ok(r1.lo > 1.9 && r1.hi < 2.1, `tight CI [${r1.lo}, ${r1.hi}]`);
  assert.ok(r1.lo <= r1.ratio && r1.ratio <= r1.hi);
  const none = bootstrapRatioCI([], b);
  assert.ok(Number.isNaN(none.ratio));
});

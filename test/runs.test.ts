// --runs K: independent repetitions, and a median CI over the run medians instead of one that takes
// blocked, drifting samples as independent.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runMediansCI95, tCritical975 } from '../harness/measure/stats.js';
import { summarize, readSummaryCsv } from '../harness/results/summarize.js';
import { readRawCsv } from '../harness/results/raw-writer.js';
import type { RawRow } from '../harness/results/schema.js';
import { renewVariants, resolveVariants, runSeed } from '../harness/experiment/plan.js';
import { repoRoot } from '../harness/paths.js';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'runs-test-'));
process.on('exit', () => fs.rmSync(scratch, { recursive: true, force: true }));

test('the run-median CI is a t interval on the logarithms of the run medians', () => {
  const ci = runMediansCI95([[9, 10, 11], [19, 20, 21], [39, 40, 41]]);
  assert.deepEqual(ci.medians, [10, 20, 40]);
  const logs = [10, 20, 40].map(Math.log);
  const m = logs.reduce((a, b) => a + b) / 3;
  const s = Math.sqrt(logs.reduce((a, x) => a + (x - m) ** 2, 0) / 2);
  const h = (tCritical975(2) * s) / Math.sqrt(3);
  assert.ok(Math.abs(ci.lo - Math.exp(m - h)) < 1e-9 && Math.abs(ci.hi - Math.exp(m + h)) < 1e-9, JSON.stringify(ci));
  assert.ok(ci.lo > 0);
  assert.ok(Number.isNaN(runMediansCI95([[1, 2, 3]]).lo), 'one run has no between-run CI');
  const mixed = runMediansCI95([[-1], [1], [3]]);
  assert.ok(Math.abs(mixed.lo - (1 - (tCritical975(2) * 2) / Math.sqrt(3))) < 1e-9, 'non-positive medians: the interval is on the medians themselves');
});

function rows(run: number, centre: number, n = 200): RawRow[] {
  return Array.from({ length: n }, (_, i) => ({ experiment: 'warm', variant: 'wasm', function: 'noop', mode: 'warm', path: 'direct', metric: 'latency', params: '', iteration: i, value: centre + (i % 10) * 0.01, unit: 'us', run }));
}

test('summary: with several runs the median CI spans the drift between runs; the iid CI is kept beside it', () => {
  const [one] = summarize(rows(1, 10));
  assert.equal(one!.runs, 1);
  assert.equal(one!.ci95_median_lo, one!.ci95_median_iid_lo);
  assert.ok(Number.isNaN(one!.run_medians_sd));
  const [three] = summarize([...rows(1, 10), ...rows(2, 12), ...rows(3, 14)]);
  assert.equal(three!.runs, 3);
  assert.equal(three!.n, 600);
  // each run is tight (0.09 wide), the runs drift by 2: the iid CI misses that, the run CI does not
  assert.ok(three!.ci95_median_iid_hi - three!.ci95_median_iid_lo < 2.5, `iid ${three!.ci95_median_iid_lo}..${three!.ci95_median_iid_hi}`);
  assert.ok(three!.ci95_median_lo < 10.5 && three!.ci95_median_hi > 13.5, `runs ${three!.ci95_median_lo}..${three!.ci95_median_hi}`);
  assert.ok(Math.abs(three!.run_medians_sd - 2) < 0.01);
  assert.equal(three!.noisy, true, 'a median known only to within its runs\' drift is noisy');
});

test('raw.csv and summary.csv written before --runs existed are read as one run', () => {
  const raw = path.join(scratch, 'old-raw.csv');
  fs.writeFileSync(raw, 'experiment,variant,function,mode,path,metric,params,iteration,value,unit\nwarm,wasm,noop,warm,direct,latency,,0,1.5,us\n');
  assert.equal(readRawCsv(raw)[0]!.run, 1);
  const sum = path.join(scratch, 'old-summary.csv');
  fs.writeFileSync(sum, 'experiment,variant,function,mode,path,metric,params,unit,status,n,mean,sd,min,p50,p90,p99,p999,max,ci95_mean_lo,ci95_mean_hi,ci95_median_lo,ci95_median_hi,cv,noisy,note\nwarm,wasm,noop,warm,direct,latency,,us,ok,1,1.5,,1.5,1.5,1.5,1.5,1.5,1.5,,,,,,false,\n');
  assert.equal(readSummaryCsv(sum)[0]!.runs, 1);
});

test('between runs every variant is created anew and the old one torn down; each run has its own seed', async () => {
  const set = await resolveVariants(['wasm', 'native'], 64);
  try {
    const before = new Map(set.active);
    const torn: string[] = [];
    for (const [name, v] of before) {
      const t = v.teardown.bind(v);
      v.teardown = async () => void (torn.push(name), await t());
    }
    await renewVariants(set);
    assert.deepEqual(torn.sort(), [...before.keys()].sort());
    for (const [name, v] of set.active) assert.notEqual(v, before.get(name), `${name} is a new instance`);
  } finally {
    await Promise.all([...set.active.values()].map((v) => v.teardown()));
    fs.rmSync(set.workDir, { recursive: true, force: true });
  }
  assert.equal(runSeed(5, 1), 5);
  assert.equal(new Set([1, 2, 3].map((r) => runSeed(5, r))).size, 3);
});

test('warm.mjs --runs 2: every cell measured in each run, summary over both, env.json says 2', () => {
  const dir = path.join(scratch, 'two');
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'experiments', 'warm.mjs'), '--variants', 'wasm', '--functions', 'noop', '--reps', '20', '--warmup', '2', '--runs', '2', '--no-notebooks', '--out', dir], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /run 2 of 2/);
  const raw = readRawCsv(path.join(dir, 'raw.csv'));
  for (const p of ['direct', 'gateway']) {
    for (const run of [1, 2]) assert.equal(raw.filter((x) => x.path === p && x.run === run).length, 20, `${p} run ${run}`);
  }
  const s = readSummaryCsv(path.join(dir, 'summary.csv')).filter((x) => x.status === 'ok');
  assert.equal(s.length, 2);
  for (const x of s) {
    assert.equal(x.runs, 2);
    assert.equal(x.n, 40);
  }
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'env.json'), 'utf8')).runs, 2);
});

test('a ratio of medians over several runs gets its CI from the per-run ratios (both sides measured in each run)', async () => {
  const { compareMedians } = await import('../harness/results/comparison.js');
  const { createRng } = await import('../harness/measure/random.js');
  const side = (variant: string, run: number, centre: number) => rows(run, centre, 50).map((r) => ({ ...r, variant, mode: 'cold' }));
  const raw = [...side('container', 1, 20), ...side('wasm', 1, 10), ...side('container', 2, 22), ...side('wasm', 2, 10), ...side('container', 3, 18), ...side('wasm', 3, 10)];
  const [r] = compareMedians({ rows: raw, metric: 'latency', path: 'direct', numerator: { variant: 'container', mode: 'cold' }, denominator: { variant: 'wasm', mode: 'cold' }, rng: createRng(1) });
  assert.equal(r!.runs, 3);
  const want = runMediansCI95([[20.045 / 10.045], [22.045 / 10.045], [18.045 / 10.045]]);
  assert.ok(Math.abs(r!.ratio_ci95_lo - want.lo) < 1e-3 && Math.abs(r!.ratio_ci95_hi - want.hi) < 1e-3, `${r!.ratio_ci95_lo}..${r!.ratio_ci95_hi} vs ${want.lo}..${want.hi}`);
  assert.ok(r!.ratio_ci95_lo < 1.85 && r!.ratio_ci95_hi > 2.15, 'the spread between runs is in the CI');
});

test('compare.mjs logic: two folders of several runs get a Welch CI over their run medians', async () => {
  const { compareRuns } = await import('../harness/results/compare-runs.js');
  const { runsRatioCI95 } = await import('../harness/measure/stats.js');
  const a = [...rows(1, 10), ...rows(2, 11), ...rows(3, 9)];
  const b = [...rows(1, 20), ...rows(2, 23), ...rows(3, 18)];
  const [r] = compareRuns(a, b, { seed: 1 });
  const want = runsRatioCI95([20.045, 23.045, 18.045], [10.045, 11.045, 9.045]);
  assert.ok(Math.abs(r!.ratio_ci95_lo - want.lo) < 1e-3 && Math.abs(r!.ratio_ci95_hi - want.hi) < 1e-3, `${r!.ratio_ci95_lo}..${r!.ratio_ci95_hi}`);
  assert.ok(want.lo < 2 && want.hi > 2 && want.lo > 1, JSON.stringify(want));
  assert.match(r!.note, /run medians/);
  const [pooled] = compareRuns(rows(1, 10), rows(1, 20), { seed: 1 });
  assert.doesNotMatch(pooled!.note, /run medians/);
});

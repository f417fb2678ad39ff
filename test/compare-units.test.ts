// compare.mjs's logic on constructed folders: matching cells, the verdict, the refusals and the
// bad-input errors, the text and the figure. The end-to-end run on real folders is compare-cli.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { changeOf, compareRuns, directionWords, noteFailures, writeCompareCsv, type CompareRow } from '../harness/results/compare-runs.js';
import { checkComparable, loadRunFolder, parseCommandLine, type RunFolder } from '../harness/results/compare-check.js';
import { cellLabels, fmtRatio, formatCompareTable, formatSkips } from '../harness/results/compare-text.js';
import { MIN_TICK_GAP_PX, compareFigure, ratioTicks } from '../harness/figures/compare.js';
import { createFreshDir } from '../harness/results/run-dir.js';
import { median } from '../harness/measure/stats.js';
import { createRng } from '../harness/measure/random.js';
import { parseCsv, openRawWriter } from '../harness/results/raw-writer.js';
import { summarize } from '../harness/results/summarize.js';
import type { RawRow } from '../harness/results/schema.js';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'compare-units-'));
process.on('exit', () => fs.rmSync(scratch, { recursive: true, force: true }));

const base = { experiment: 'warm', mode: 'warm', metric: 'latency', params: 'scale=small', unit: 'us' };

/** n samples around `center` (±5%, seeded) for variant/function/path. */
function samples(variant: string, fn: string, p: string, center: number, n = 40, seed = 1, extra: Partial<RawRow> = {}): RawRow[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, (_, i) => ({ ...base, variant, function: fn, path: p, iteration: i, value: center * (0.95 + 0.1 * rng()), ...extra }));
}

test('cells match on every key column; a cell in one run only gets a row, not silence', () => {
  const a = [...samples('wasm', 'noop', 'gateway', 100), ...samples('native', 'noop', 'gateway', 200), ...samples('wasm', 'sha256', 'gateway', 300)];
  const b = [
    ...samples('wasm', 'noop', 'gateway', 100, 40, 2),
    ...samples('native', 'noop', 'gateway', 200, 40, 2, { params: 'scale=large' }), // another cell
    ...samples('wasm', 'sha256', 'direct', 300, 40, 2),
  ];
  const rows = compareRuns(a, b, { seed: 1 });
  const summary = rows.map((r) => `${r.in}:${r.variant}/${r.function}/${r.path}/${r.params}`);
  assert.deepEqual(summary, [
    'both:wasm/noop/gateway/scale=small',
    'a only:native/noop/gateway/scale=small',
    'a only:wasm/sha256/gateway/scale=small',
    'b only:native/noop/gateway/scale=large',
    'b only:wasm/sha256/direct/scale=small',
  ]);
  const onlyA = rows[1] as CompareRow;
  assert.equal(onlyA.n_a, 40);
  assert.equal(onlyA.n_b, 0);
  assert.ok(Number.isNaN(onlyA.ratio));
  assert.equal(onlyA.verdict, 'n/a');
  assert.match(onlyA.note, /measured in A only/);
});

test('the ratio is median(B)/median(A), the CI holds it, and the verdict follows the CI and the unit', () => {
  const a = [...samples('wasm', 'noop', 'gateway', 100), ...samples('wasm', 'noop', 'direct', 100), ...samples('native', 'noop', 'gateway', 100)];
  const b = [
    ...samples('wasm', 'noop', 'gateway', 80, 40, 3), // 20% lower
    ...samples('wasm', 'noop', 'direct', 130, 40, 3), // 30% higher
    ...samples('native', 'noop', 'gateway', 100, 40, 3), // unchanged
  ];
  const rows = compareRuns(a, b, { seed: 7 });
  for (const r of rows) {
    const va = a.filter((x) => x.variant === r.variant && x.path === r.path).map((x) => x.value);
    const vb = b.filter((x) => x.variant === r.variant && x.path === r.path).map((x) => x.value);
    assert.equal(r.ratio, median(vb) / median(va));
    assert.equal(r.median_a, median(va));
    assert.ok(r.ratio_ci95_lo <= r.ratio && r.ratio <= r.ratio_ci95_hi, JSON.stringify(r));
  }
  assert.deepEqual(rows.map((r) => [r.change, r.verdict, r.distinguishable]), [
    ['lower', 'faster', true],
    ['higher', 'slower', true],
    ['same', 'same', false],
  ]);
  // deterministic, and a cell's CI does not depend on the other cells in the folders
  const again = compareRuns(a.slice(0, 40), b.slice(0, 40), { seed: 7 });
  assert.deepEqual(again[0], rows[0]);
  const otherSeed = compareRuns(a, b, { seed: 8 });
  assert.notEqual(otherSeed[0]?.ratio_ci95_lo, rows[0]?.ratio_ci95_lo);
});

test('verdict words per unit; no verdict below 6 samples a side or without a finite CI', () => {
  assert.deepEqual(directionWords('us'), { lower: 'faster', higher: 'slower' });
  assert.deepEqual(directionWords('req/s'), { lower: 'slower', higher: 'faster' });
  assert.deepEqual(directionWords('MiB'), { lower: 'smaller', higher: 'larger' });
  assert.deepEqual(directionWords('switches'), { lower: 'lower', higher: 'higher' });
  assert.equal(changeOf({ lo: 0.8, hi: 0.99 }, 6, 6), 'lower');
  assert.equal(changeOf({ lo: 1.01, hi: 1.2 }, 6, 6), 'higher');
  assert.equal(changeOf({ lo: 0.9, hi: 1 }, 6, 6), 'same');
  assert.equal(changeOf({ lo: 0.5, hi: 0.6 }, 5, 100), 'n/a');
  assert.equal(changeOf({ lo: NaN, hi: NaN }, 10, 10), 'n/a');
  // one sample a side: a bootstrap CI of [r, r] would exclude 1 and claim a change
  const rows = compareRuns(samples('wasm', 'noop', 'g', 100, 3), samples('wasm', 'noop', 'g', 200, 3, 2), { seed: 1 });
  assert.equal(rows[0]?.verdict, 'n/a');
  assert.equal(rows[0]?.distinguishable, undefined);
  assert.match(rows[0]?.note ?? '', /too few samples/);
  const rate = compareRuns(samples('wasm', 'noop', 'load', 100, 20, 1, { unit: 'req/s' }), samples('wasm', 'noop', 'load', 150, 20, 2, { unit: 'req/s' }), { seed: 1 });
  assert.equal(rate[0]?.verdict, 'faster');
});

test('extra raw columns (a repetition number) pool into one cell; non-finite values are counted', () => {
  const a = [...samples('wasm', 'noop', 'g', 100, 20, 1, { run: 1 } as Partial<RawRow>), ...samples('wasm', 'noop', 'g', 100, 20, 2, { run: 2 } as Partial<RawRow>)];
  const b = [...samples('wasm', 'noop', 'g', 100, 20, 3), { ...base, variant: 'wasm', function: 'noop', path: 'g', iteration: 99, value: NaN }];
  const rows = compareRuns(a, b, { seed: 1 });
  assert.equal(rows.length, 1);
  assert.equal(rows[0]?.n_a, 40);
  assert.equal(rows[0]?.n_b, 20);
  assert.match(rows[0]?.note ?? '', /1 non-finite values in B left out/);
});

test('a cell that failed in one run says so (from summary.csv)', () => {
  const a = samples('wasm', 'noop', 'g', 100, 10);
  const b = samples('wasm', 'noop', 'g', 100, 10, 2);
  const rows = compareRuns(a, b, { seed: 1 });
  noteFailures(rows, summarize(a), summarize(b, [], [{ experiment: 'warm', variant: 'wasm', function: 'noop', mode: 'warm', reason: 'timeout' }]));
  assert.match(rows[0]?.note ?? '', /failed in B: failed after 10 samples: timeout/);
  assert.doesNotMatch(rows[0]?.note ?? '', /failed in A/);
});

// --- comparability ---

function env(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    hostname: 'vm',
    kernel: { release: '6.18.44', version: '#1 SMP' },
    os: 'Debian GNU/Linux 12 (bookworm)',
    cpu: { model: 'Intel(R) Xeon(R) Processor', logicalCores: 2 },
    memoryTotalBytes: 25324732416,
    cpuGovernor: 'unreadable',
    turbo: 'unreadable',
    node: 'v20.20.2',
    v8: '11.3',
    tools: { runc: 'runc 1.1.5', clang: 'clang 14', 'wasm-opt': '108', bpftool: 'v7.1.0' },
    git: { commit: 'aaaaaaaaaaaa', dirty: false },
    commandLine: ['experiments/warm.mjs', '--variants', 'wasm', '--reps', '40', '--no-notebooks', '--out', '/tmp/a'],
    seed: 1,
    quick: false,
    root: true,
    ...over,
  };
}
const folder = (side: string, e: Record<string, unknown>, state = 'complete', reason?: string): RunFolder => ({
  side, dir: `/r/${side}`, env: e, status: { state, ...(reason ? { reason } : {}) }, raw: [], summary: [],
});

test('same machine and flags: comparable; the commit and the seed may differ and are reported', () => {
  const c = checkComparable(
    folder('A', env()),
    folder('B', env({ git: { commit: 'bbbbbbbbbbbb', dirty: true }, seed: 5, hostname: 'other', loadAverage: { '1m': 3.5 }, commandLine: ['experiments/warm.mjs', '--reps=40', '--variants', 'wasm', '--seed', '5', '--out', '/tmp/b'] })),
  );
  assert.deepEqual(c.refusals, []);
  assert.ok(c.info.some((l) => /commit: A aaaaaaaaaaaa, B bbbbbbbbbbbb \(dirty\)/.test(l)), c.info.join('\n'));
  assert.ok(c.info.some((l) => /seed: A 1, B 5/.test(l)));
  assert.ok(c.info.some((l) => /host name: A "vm", B "other"/.test(l)));
  assert.ok(c.info.includes('load average (1 min, at the end of the run): A unknown, B 3.5'), c.info.join('\n'));
});

test('another machine is refused with the field and both values named', () => {
  const c = checkComparable(folder('A', env()), folder('B', env({ cpu: { model: 'AMD EPYC', logicalCores: 4 }, node: 'v22.1.0' })));
  assert.deepEqual(c.refusals, [
    'machine differs: cpu.model is "Intel(R) Xeon(R) Processor" in A, "AMD EPYC" in B',
    'machine differs: cpu.logicalCores is 2 in A, 4 in B',
    'machine differs: node is "v20.20.2" in A, "v22.1.0" in B',
  ]);
  const noTools = env();
  delete noTools.tools;
  assert.ok(checkComparable(folder('A', env()), folder('B', noTools)).refusals.includes('machine differs: tools.runc is "runc 1.1.5" in A, (absent) in B'));
});

test('other flags or another experiment are refused, naming each flag', () => {
  const c = checkComparable(
    folder('A', env()),
    folder('B', env({ commandLine: ['experiments/warm.mjs', '--variants', 'wasm,native', '--reps', '40', '--quick'] })),
  );
  assert.deepEqual(c.refusals, [
    'flags differ: --variants is "wasm" in A, "wasm,native" in B',
    'flags differ: --quick is not given in A, "true" in B',
  ]);
  const other = checkComparable(folder('A', env()), folder('B', env({ commandLine: ['experiments/cold-start.mjs', '--variants', 'wasm', '--reps', '40'] })));
  assert.deepEqual(other.refusals, ['experiment differs: A ran "experiments/warm.mjs", B ran "experiments/cold-start.mjs"']);
});

test('an unfinished run is refused with its state and reason', () => {
  const c = checkComparable(folder('A', env(), 'incomplete', 'interrupted by SIGINT'), { ...folder('B', env()), status: undefined });
  assert.deepEqual(c.refusals, ['A is incomplete (interrupted by SIGINT), not complete: /r/A', 'B has no status.json, not complete: /r/B']);
  assert.deepEqual(checkComparable(folder('A', env(), 'running'), folder('B', env())).refusals, ['A is running, not complete: /r/A']);
});

test('command lines: --k=v and --k v are the same, a bare flag is true', () => {
  const p = parseCommandLine(['experiments/x.mjs', '--quick', '--reps=5', '--variants', 'wasm', '--no-notebooks']);
  assert.equal(p.script, 'experiments/x.mjs');
  assert.deepEqual([...p.flags], [['quick', 'true'], ['reps', '5'], ['variants', 'wasm'], ['no-notebooks', 'true']]);
});

test('bad folders: missing, a file, without raw.csv, without env.json, broken env.json, broken raw.csv', () => {
  const dir = (name: string, files: Record<string, string>) => {
    const d = path.join(scratch, name);
    fs.mkdirSync(d);
    for (const [f, t] of Object.entries(files)) fs.writeFileSync(path.join(d, f), t);
    return d;
  };
  assert.throws(() => loadRunFolder(path.join(scratch, 'nope'), 'A'), { name: 'CompareInputError', message: /^A: no such folder: .*nope$/ });
  fs.writeFileSync(path.join(scratch, 'file'), 'x');
  assert.throws(() => loadRunFolder(path.join(scratch, 'file'), 'B'), /B: not a folder/);
  assert.throws(() => loadRunFolder(dir('noraw', { 'env.json': '{}' }), 'A'), /A: .*noraw has no raw\.csv/);
  const header = 'experiment,variant,function,mode,path,metric,params,iteration,value,unit\n';
  assert.throws(() => loadRunFolder(dir('noenv', { 'raw.csv': header }), 'B'), /B: .*noenv has no env\.json/);
  assert.throws(() => loadRunFolder(dir('badenv', { 'raw.csv': header, 'env.json': '[1' }), 'A'), /A: .*badenv\/env\.json is not a JSON object/);
  assert.throws(() => loadRunFolder(dir('badraw', { 'raw.csv': 'a,b\n1,2\n', 'env.json': '{}' }), 'A'), /A: .*missing columns/);
  const ok = loadRunFolder(dir('ok', { 'raw.csv': header + 'warm,wasm,noop,warm,g,latency,,0,5,us\n', 'env.json': '{"seed":1}', 'status.json': '{"state":"complete"}' }), 'A');
  assert.equal(ok.raw.length, 1);
  assert.equal(ok.status?.state, 'complete');
  assert.deepEqual(ok.summary, []);
});

test('labels name only what differs; the text lists one-sided cells and skips', () => {
  const k = (variant: string, p: string, params: string) => ({ ...base, variant, function: 'noop', path: p, params });
  assert.deepEqual(cellLabels([k('wasm', 'g', 'size=64;x=1'), k('wasm', 'g', 'size=1024;x=1'), k('native', 'd', 'size=64;x=1')]), [
    'wasm/noop/warm · g · size=64',
    'wasm/noop/warm · g · size=1024',
    'native/noop/warm · d · size=64',
  ]);
  // differing only in a column not shown: every column
  const dup = cellLabels([{ ...k('wasm', 'g', ''), unit: 'us' }, { ...k('wasm', 'g', ''), unit: 'ms' }]);
  assert.equal(new Set(dup).size, 2);
  const rows = compareRuns(samples('wasm', 'noop', 'g', 100, 10), [...samples('wasm', 'noop', 'g', 100, 10, 2), ...samples('native', 'noop', 'g', 5, 7)], { seed: 1 });
  const text = formatCompareTable(rows).join('\n');
  assert.match(text, /^cell +n A +n B +median A +median B +B\/A +95% CI +verdict$/m);
  assert.match(text, /^wasm\/noop\/warm +10 +10 /m);
  assert.match(text, /measured in B only \(1\): native\/noop\/warm \(n=7\)/);
  const skip = (variant: string, reason: string) => ({ experiment: 'warm', variant, function: 'noop-as', mode: 'warm', reason });
  const s = formatSkips(summarize([], [skip('native', 'no native build'), skip('container', 'not root')]), summarize([], [skip('native', 'no native build')]));
  assert.deepEqual(s, ['skipped in both (1): warm: native/noop-as/warm — no native build', 'skipped in A only (1): warm: container/noop-as/warm — not root']);
});

test('compare.csv: one row per cell, empty fields for no value, never overwritten', () => {
  const rows = compareRuns(samples('wasm', 'noop', 'g', 100, 10), [...samples('wasm', 'noop', 'g', 90, 10, 2), ...samples('native', 'noop', 'g', 5, 7)], { seed: 1 });
  const file = path.join(scratch, 'compare.csv');
  writeCompareCsv(file, rows);
  const { records } = parseCsv(fs.readFileSync(file, 'utf8'));
  const [header, r1, r2] = records as [string[], string[], string[]];
  assert.deepEqual(header.slice(8), ['in', 'n_a', 'n_b', 'median_a', 'median_b', 'ratio', 'ratio_ci95_lo', 'ratio_ci95_hi', 'distinguishable', 'change', 'verdict', 'note']);
  assert.equal(records.length, 3);
  const col = (r: string[], c: string) => r[header.indexOf(c)];
  assert.equal(Number(col(r1, 'ratio')), rows[0]?.ratio);
  assert.match(col(r1, 'distinguishable') ?? '', /^(true|false)$/);
  assert.equal(col(r2, 'in'), 'b only');
  assert.equal(col(r2, 'ratio'), '');
  assert.equal(col(r2, 'distinguishable'), '');
  assert.throws(() => writeCompareCsv(file, rows), /EEXIST/);
});

test('the figure draws cells in both runs, a line at 1, and lists what it does not draw', () => {
  const rows = compareRuns(
    [...samples('wasm', 'noop', 'g', 100), ...samples('native', 'noop', 'g', 100)],
    [...samples('wasm', 'noop', 'g', 50, 40, 2), ...samples('container', 'noop', 'g', 5)],
    { seed: 1 },
  );
  const fig = compareFigure(rows, { aLabel: 'runA', bLabel: 'runB', iterations: 2000, seed: 1, notes: ['Measured in A only, not drawn (1): native/noop/warm g latency'] });
  assert.match(fig.subtitle ?? '', /A = runA; B = runB/);
  assert.deepEqual((fig.plot.y as { domain: string[] }).domain, ['wasm/noop/warm']);
  assert.deepEqual(fig.notes, ['Measured in A only, not drawn (1): native/noop/warm g latency']);
  const [lo, hi] = (fig.plot.x as { domain: [number, number] }).domain;
  assert.ok(lo < (rows[0]?.ratio_ci95_lo ?? 0) && hi > 1, `${lo} ${hi}`);
  const empty = compareFigure(rows.filter((r) => r.in !== 'both'), { aLabel: 'a', bLabel: 'b', iterations: 2000, seed: 1 });
  assert.equal(empty.notes?.[0], 'No cell was measured in both folders.');
});

test('ratios print with 3 decimals, more when a bound next to 1 would print as 1.000', () => {
  assert.equal(fmtRatio(0.93712), '0.937');
  assert.equal(fmtRatio(1), '1.000');
  assert.equal(fmtRatio(1.0003), '1.0003');
  assert.equal(fmtRatio(0.99996), '0.99996');
  assert.equal(fmtRatio(12.345), '12.3');
  assert.equal(fmtRatio(NaN), '–');
});

test('ratio ticks: round values inside the range, 1 first, never closer than the label gap', () => {
  const gapOk = (ts: number[], lo: number, hi: number, px: number) =>
    ts.every((t, i) => i === 0 || (Math.log(t / (ts[i - 1] as number)) * px) / Math.log(hi / lo) >= MIN_TICK_GAP_PX);
  for (const [lo, hi, px] of [[0.06, 30, 450], [0.27, 1.78, 450], [0.85, 1.3, 450], [0.97, 1.03, 450], [0.5, 2, 120]] as const) {
    const ts = ratioTicks(lo, hi, px);
    assert.ok(ts.includes(1), `${lo}..${hi}: ${ts}`);
    assert.ok(ts.every((t) => t >= lo && t <= hi), `${ts}`);
    assert.ok(gapOk(ts, lo, hi, px), `${lo}..${hi}: ${ts}`);
  }
  assert.deepEqual(ratioTicks(0.06, 30, 450), [0.1, 0.2, 0.5, 1, 2, 5, 10, 20]);
  assert.deepEqual(ratioTicks(0.27, 1.78, 450), [0.3, 0.5, 0.6, 0.8, 1, 1.2, 1.5]);
  assert.ok(ratioTicks(0.97, 1.03, 450).length >= 3);
});

test('createFreshDir: an existing --out is refused and left alone; the default gets a fresh suffix', () => {
  const existing = path.join(scratch, 'exists');
  fs.mkdirSync(existing);
  fs.writeFileSync(path.join(existing, 'keep'), 'x');
  assert.throws(() => createFreshDir(scratch, 'x', existing), /already exists; refusing to reuse/);
  assert.deepEqual(fs.readdirSync(existing), ['keep']);
  const a = createFreshDir(scratch, '20260101-000000-compare');
  const b = createFreshDir(scratch, '20260101-000000-compare');
  assert.notEqual(a, b);
  assert.match(path.basename(a), /^20260101-000000-compare-[0-9a-f]{4}$/);
  // a raw writer works in it (it is an ordinary folder)
  openRawWriter(path.join(a, 'raw.csv')).close();
});

// compare.mjs on real folders: two real warm runs (WASM in V8, native processes, through the real
// gateway), then the comparison as a user runs it; a run with another flag, an unfinished run, a
// non-folder and an existing --out are refused.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot, resultsRoot } from '../harness/paths.js';
import { parseCsv, readRawCsv } from '../harness/results/raw-writer.js';
import { median } from '../harness/measure/stats.js';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'compare-cli-'));
process.on('exit', () => fs.rmSync(scratch, { recursive: true, force: true }));
const at = (name: string) => path.join(scratch, name);

function run(script: string, args: string[]) {
  return spawnSync(process.execPath, [path.join(repoRoot, 'experiments', script), ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 180_000 });
}
const WARM = ['--variants', 'wasm,native', '--functions', 'noop', '--warmup', '5', '--no-notebooks'];

before(() => {
  // a and b as a thesis would have them (same flags, b with another seed); c with one flag changed
  for (const [name, extra] of [['a', ['--reps', '40']], ['b', ['--reps', '40', '--seed', '2']], ['c', ['--reps', '30']]] as const) {
    const r = run('warm.mjs', [...WARM, ...extra, '--out', at(name)]);
    assert.equal(r.status, 0, r.stderr);
  }
});

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

test('two real runs: every common cell gets its ratio and CI, a text table and a PNG figure', () => {
  const out = at('ab');
  const r = run('compare.mjs', [at('a'), at('b'), '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`results: ${out}\\n$`));
  assert.match(r.stdout, /seed: A 1, B 2/);
  assert.match(r.stdout, /^cell +n A +n B/m);

  const rawA = readRawCsv(path.join(at('a'), 'raw.csv'));
  const rawB = readRawCsv(path.join(at('b'), 'raw.csv'));
  const key = (x: { variant: string; function: string; mode: string; path: string; metric: string; params: string }) => [x.variant, x.function, x.mode, x.path, x.metric, x.params].join('|');
  const cells = [...new Set(rawA.map(key))].filter((k) => rawB.some((x) => key(x) === k));
  assert.equal(cells.length, 4, cells.join('\n')); // wasm, native × direct, gateway

  const { records } = parseCsv(fs.readFileSync(path.join(out, 'compare.csv'), 'utf8'));
  const [header, ...body] = records as [string[], ...string[][]];
  const rows = body.map((rec) => Object.fromEntries(header.map((h, i) => [h, rec[i] as string])) as Record<string, string> & Parameters<typeof key>[0]);
  assert.deepEqual(rows.map(key).sort(), cells.sort());
  for (const row of rows) {
    const a = rawA.filter((x) => key(x) === key(row)).map((x) => x.value);
    const b = rawB.filter((x) => key(x) === key(row)).map((x) => x.value);
    assert.equal(row.in, 'both');
    assert.equal(Number(row.n_a), 40);
    assert.equal(Number(row.n_b), 40);
    assert.equal(Number(row.ratio), median(b) / median(a));
    const lo = Number(row.ratio_ci95_lo);
    const hi = Number(row.ratio_ci95_hi);
    assert.ok(lo > 0 && lo <= Number(row.ratio) && Number(row.ratio) <= hi, JSON.stringify(row));
    const expected = hi < 1 ? 'faster' : lo > 1 ? 'slower' : 'same';
    assert.equal(row.verdict, expected, JSON.stringify(row));
    assert.equal(row.distinguishable, String(expected !== 'same'));
  }
  const text = fs.readFileSync(path.join(out, 'compare.txt'), 'utf8');
  assert.match(text, /^A: .*\/a$/m);
  assert.match(text, /commit: A [0-9a-f]{40}/);
  assert.equal(text.split('\n').filter((l) => /^(wasm|native)\/noop\/warm · (direct|gateway) +40 +40 /.test(l)).length, 4, text);

  const png = fs.readFileSync(path.join(out, 'figures', 'compare.png'));
  assert.ok(png.subarray(0, 8).equals(PNG_SIGNATURE));
  assert.equal(png.subarray(12, 16).toString('latin1'), 'IHDR');
  assert.ok(png.readUInt32BE(16) > 500 && png.readUInt32BE(20) > 200, `${png.readUInt32BE(16)}×${png.readUInt32BE(20)}`);
  const svg = fs.readFileSync(path.join(out, 'figures', 'compare.svg'), 'utf8');
  for (const label of ['wasm/noop/warm · gateway', 'native/noop/warm · direct']) assert.ok(svg.includes(label), label);
});

test('a run with another flag is refused, naming the flag; --force compares and lists the cells only one run has', () => {
  const out = at('ac');
  const r = run('compare.mjs', [at('a'), at('c'), '--out', out]);
  assert.equal(r.status, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /refusing to compare/);
  assert.match(r.stderr, /flags differ: --reps is "40" in A, "30" in B/);
  assert.doesNotMatch(r.stderr, /machine differs|--seed|--out/);
  assert.ok(!fs.existsSync(out), 'a refused comparison writes nothing');

  const forced = run('compare.mjs', [at('a'), at('c'), '--out', out, '--force']);
  assert.equal(forced.status, 0, forced.stderr);
  assert.match(fs.readFileSync(path.join(out, 'compare.txt'), 'utf8'), /FORCED despite: flags differ: --reps is "40" in A, "30" in B/);
});

test('an unfinished run is refused unless --force; a folder without raw.csv and a missing one are errors', () => {
  const inc = at('a-incomplete');
  fs.cpSync(at('a'), inc, { recursive: true });
  fs.writeFileSync(path.join(inc, 'status.json'), JSON.stringify({ state: 'incomplete', reason: 'interrupted by SIGINT' }));
  const r = run('compare.mjs', [inc, at('b'), '--out', at('inc-out')]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /A is incomplete \(interrupted by SIGINT\), not complete/);
  assert.equal(run('compare.mjs', [inc, at('b'), '--out', at('inc-out'), '--force']).status, 0);

  const noRaw = at('no-raw');
  fs.cpSync(at('a'), noRaw, { recursive: true });
  fs.rmSync(path.join(noRaw, 'raw.csv'));
  const nr = run('compare.mjs', [at('a'), noRaw]);
  assert.equal(nr.status, 2);
  assert.match(nr.stderr, /B: .*no-raw has no raw\.csv/);
  const missing = run('compare.mjs', [at('a'), at('nowhere')]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /B: no such folder: .*nowhere/);
  const one = run('compare.mjs', [at('a')]);
  assert.equal(one.status, 2);
  assert.match(one.stderr, /wants two results folders/);
  const same = run('compare.mjs', [at('a'), at('a')]);
  assert.equal(same.status, 2);
  assert.match(same.stderr, /same folder/);
});

test('--out refuses an existing folder; the default folder is new, under results/, and leaves results/latest alone', () => {
  const existing = at('existing');
  fs.mkdirSync(existing);
  const r = run('compare.mjs', [at('a'), at('b'), '--out', existing]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /already exists; refusing/);
  assert.deepEqual(fs.readdirSync(existing), []);

  const latest = path.join(resultsRoot, 'latest');
  const latestBefore = fs.existsSync(latest) ? fs.readlinkSync(latest) : undefined;
  const d = run('compare.mjs', [at('a'), at('b')]);
  assert.equal(d.status, 0, d.stderr);
  const dir = /results: (.*)\n$/.exec(d.stdout)?.[1] ?? '';
  try {
    assert.equal(path.dirname(dir), resultsRoot);
    assert.match(path.basename(dir), /^\d{8}-\d{6}-compare-[0-9a-f]{4}$/);
    assert.ok(fs.existsSync(path.join(dir, 'compare.csv')));
    assert.equal(fs.existsSync(latest) ? fs.readlinkSync(latest) : undefined, latestBefore);
  } finally {
    if (dir.startsWith(resultsRoot + path.sep)) fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('--help explains the command; a bad flag exits 2', () => {
  const h = run('compare.mjs', ['--help']);
  assert.equal(h.status, 0);
  assert.match(h.stdout, /compare\.mjs <folderA> <folderB>/);
  assert.match(h.stdout, /--force/);
  const bad = run('compare.mjs', ['--nope', at('a'), at('b')]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /Unknown option '--nope'/);
  const seed = run('compare.mjs', [at('a'), at('b'), '--seed', 'x']);
  assert.equal(seed.status, 2);
  assert.match(seed.stderr, /--seed wants an integer/);
});

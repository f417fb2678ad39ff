import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRunDir, utcStamp } from '../harness/results/run-dir.js';
import { openRawWriter, parseCsv, readRawCsv } from '../harness/results/raw-writer.js';
import { readSummaryCsv, summarize, writeSummaryCsv } from '../harness/results/summarize.js';
import { collectEnv, writeEnvJson } from '../harness/results/env.js';
import { compareMedians, writeComparisonCsv, COMPARISON_COLUMNS } from '../harness/results/comparison.js';
import { RAW_COLUMNS, SUMMARY_COLUMNS, type RawRow } from '../harness/results/schema.js';
import { createRng } from '../harness/measure/random.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'results-test-'));

function row(over: Partial<RawRow> = {}): RawRow {
  return {
    experiment: 'exp', variant: 'wasm', function: 'sha256', mode: 'cold', path: 'in-process',
    metric: 'cold_start', params: '', iteration: 0, value: 1, unit: 'ns', run: 1, ...over,
  };
}

test('run dir: fresh folder, status, latest link; an existing --out is never reused', () => {
  const root = tmp();
  const date = new Date(Date.UTC(2025, 0, 2, 3, 4, 5));
  assert.equal(utcStamp(date), '20250102-030405');
  const a = createRunDir({ resultsRoot: root, experiment: 'cold start', date });
  const b = createRunDir({ resultsRoot: root, experiment: 'cold start', date });
  assert.match(a.name, /^20250102-030405-cold-start-[0-9a-f]{4}$/);
  assert.notEqual(a.dir, b.dir);
  const st = JSON.parse(fs.readFileSync(a.statusPath, 'utf8'));
  assert.deepEqual(st, { state: 'running', started: date.toISOString(), pid: process.pid });
  assert.equal(fs.readlinkSync(path.join(root, 'latest')), b.name);
  assert.equal(b.latest.updated, true);
  a.markComplete();
  const done = JSON.parse(fs.readFileSync(a.statusPath, 'utf8'));
  assert.equal(done.state, 'complete');
  assert.equal(typeof done.ended, 'string');
  b.markIncomplete('SIGINT');
  const inc = JSON.parse(fs.readFileSync(b.statusPath, 'utf8'));
  assert.equal(inc.state, 'incomplete');
  assert.equal(inc.reason, 'SIGINT');
  assert.deepEqual(fs.readdirSync(root).filter((n) => n.startsWith('.')), [], 'no temp links left');

  const out = path.join(root, 'mine');
  const c = createRunDir({ resultsRoot: root, experiment: 'x', out });
  fs.writeFileSync(path.join(out, 'raw.csv'), 'precious\n');
  const statusBefore = fs.readFileSync(c.statusPath, 'utf8');
  assert.throws(() => createRunDir({ resultsRoot: root, experiment: 'x', out }), /already exists/);
  assert.equal(fs.readFileSync(path.join(out, 'raw.csv'), 'utf8'), 'precious\n');
  assert.equal(fs.readFileSync(c.statusPath, 'utf8'), statusBefore);
  assert.deepEqual(fs.readdirSync(out).sort(), ['raw.csv', 'status.json']);
  // latest that is a real folder is left alone
  const root2 = tmp();
  fs.mkdirSync(path.join(root2, 'latest'));
  fs.writeFileSync(path.join(root2, 'latest', 'keep'), 'k');
  const d = createRunDir({ resultsRoot: root2, experiment: 'y' });
  assert.equal(d.latest.updated, false);
  assert.equal(fs.readFileSync(path.join(root2, 'latest', 'keep'), 'utf8'), 'k');
});

test('raw.csv: exact header, appends, and round-trips awkward fields', () => {
  const dir = tmp();
  const file = path.join(dir, 'raw.csv');
  const tricky = 'a=1;note=he said "hi, there"\nsecond line';
  const rows1 = [row({ iteration: 0, value: 0.1 + 0.2 }), row({ iteration: 1, params: tricky, value: 123456789012 })];
  const rows2 = [row({ iteration: 2, value: NaN, unit: 'µs', function: 'ünï,côde' })];
  const w = openRawWriter(file);
  w.append(rows1);
  w.append([]);
  w.close();
  const w2 = openRawWriter(file); // reopen: no second header
  w2.append(rows2);
  assert.equal(w2.rowsWritten, 1);
  w2.close();
  const text = fs.readFileSync(file, 'utf8');
  assert.equal(text.split('\n')[0], RAW_COLUMNS.join(','));
  assert.equal(text.split(RAW_COLUMNS.join(',')).length, 2, 'header written once');
  const back = readRawCsv(file);
  assert.equal(back.length, 3);
  assert.deepEqual(back[0], rows1[0]);
  assert.deepEqual(back[1], rows1[1]);
  assert.equal(back[1]?.params, tricky);
  assert.equal(back[0]?.value, 0.30000000000000004);
  assert.ok(Number.isNaN(back[2]?.value));
  assert.equal(back[2]?.function, 'ünï,côde');
  // an existing file with another header is refused
  const other = path.join(dir, 'other.csv');
  fs.writeFileSync(other, 'a,b\n1,2\n');
  assert.throws(() => openRawWriter(other), /different header/);
  // a record cut off mid-write is dropped, everything before it kept
  fs.appendFileSync(file, 'exp,wasm,sha256,cold,in-process,cold_start,"a=1;b');
  assert.equal(readRawCsv(file).length, 3);
  assert.equal(parseCsv('x,y\n1,"2\n').truncated, '1,"2\n');
});

test('an interrupted writer (SIGKILL) leaves every flushed row readable', async () => {
  const dir = tmp();
  const file = path.join(dir, 'raw.csv');
  const writerUrl = new URL('../harness/results/raw-writer.js', import.meta.url).href;
  const script = path.join(dir, 'child.mjs');
  fs.writeFileSync(
    script,
    `import { openRawWriter } from ${JSON.stringify(writerUrl)};
const w = openRawWriter(${JSON.stringify(file)});
let it = 0;
for (let b = 0; b < 5; b++) {
  const rows = [];
  for (let i = 0; i < 100; i++) rows.push({ experiment: 'e', variant: 'v', function: 'f', mode: 'm', path: 'p',
    metric: 'latency', params: 'k=v,"q"', iteration: it, value: it++ * 1.5, unit: 'ns' });
  w.append(rows);
}
process.stdout.write('ready\\n');
setInterval(() => {}, 1000); // never closes the writer
`,
  );
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`child exited early: ${code}`)));
  });
  child.removeAllListeners('exit');
  const exited = new Promise((r) => child.on('exit', (_c, sig) => r(sig)));
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
  const rows = readRawCsv(file);
  assert.equal(rows.length, 500);
  assert.deepEqual(rows.map((r) => r.iteration), Array.from({ length: 500 }, (_, i) => i));
  assert.equal(rows[499]?.value, 499 * 1.5);
  assert.equal(rows[0]?.params, 'k=v,"q"');
});

test('summary: groups, skipped and failed cells, exact header, NaN as empty', () => {
  const raw: RawRow[] = [];
  for (let i = 0; i < 10; i++) raw.push(row({ iteration: i, value: i + 1 }));
  for (let i = 0; i < 3; i++) raw.push(row({ variant: 'native', iteration: i, value: 100 }));
  raw.push(row({ variant: 'runc', mode: 'cold', iteration: 0, value: 5 }));
  const rows = summarize(
    raw,
    [{ experiment: 'exp', variant: 'crun', function: 'sha256', mode: 'cold', reason: 'crun: cgroups hybrid mode unsupported' }],
    [
      { experiment: 'exp', variant: 'runc', function: 'sha256', mode: 'cold', reason: 'timeout after 5 s' },
      { experiment: 'exp', variant: 'criu', function: 'sha256', mode: 'cold', reason: 'criu check failed' },
    ],
  );
  assert.equal(rows.length, 5);
  const wasm = rows[0]!;
  assert.equal(wasm.status, 'ok');
  assert.equal(wasm.n, 10);
  assert.equal(wasm.p50, 5.5);
  assert.equal(wasm.ci95_median_lo, 2);
  const native = rows[1]!;
  assert.equal(native.n, 3);
  assert.ok(Number.isNaN(native.ci95_median_lo));
  assert.equal(rows[2]?.status, 'failed');
  assert.match(rows[2]?.note ?? '', /failed after 1 samples: timeout after 5 s/);
  assert.equal(rows[3]?.variant, 'criu');
  assert.equal(rows[3]?.status, 'failed');
  assert.equal(rows[3]?.n, 0);
  const skipped = rows[4]!;
  assert.equal(skipped.status, 'skipped');
  assert.equal(skipped.note, 'crun: cgroups hybrid mode unsupported');

  const dir = tmp();
  const file = path.join(dir, 'summary.csv');
  writeSummaryCsv(file, rows);
  assert.throws(() => writeSummaryCsv(file, rows), /EEXIST/);
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  assert.equal(lines[0], SUMMARY_COLUMNS.join(','));
  const { records } = parseCsv(fs.readFileSync(file, 'utf8'));
  const skipRec = records[5]!;
  const col = (c: (typeof SUMMARY_COLUMNS)[number]) => skipRec[SUMMARY_COLUMNS.indexOf(c)];
  assert.equal(col('status'), 'skipped');
  assert.equal(col('n'), '0');
  assert.equal(col('mean'), '');
  assert.equal(col('p50'), '');
  assert.equal(col('noisy'), 'false');
  assert.equal(col('note'), 'crun: cgroups hybrid mode unsupported');
  const nativeRec = records[2]!;
  assert.equal(nativeRec[SUMMARY_COLUMNS.indexOf('ci95_median_lo')], '');
  const back = readSummaryCsv(file);
  assert.equal(back.length, 5);
  assert.equal(back[0]?.p90, wasm.p90);
  assert.equal(back[0]?.noisy, true);
  assert.equal(back[4]?.status, 'skipped');
  assert.ok(Number.isNaN(back[4]?.mean));
});

test('env.json has the required keys', () => {
  const dir = tmp();
  const env = collectEnv({ argv: ['node', 'suite', '--quick'], seed: 7, quick: true, skips: [], extra: { note: 'x' } });
  const file = writeEnvJson(dir, env);
  const j = JSON.parse(fs.readFileSync(file, 'utf8'));
  for (const k of [
    'timestamp', 'hostname', 'kernel', 'os', 'cpu', 'memoryTotalBytes', 'cpuGovernor', 'turbo', 'node', 'v8',
    'tools', 'git', 'commandLine', 'seed', 'quick', 'skips', 'root', 'loadAverage', 'extra',
  ]) assert.ok(k in j, `env.json has ${k}`);
  assert.deepEqual(Object.keys(j.tools).sort(), ['bpftool', 'clang', 'runc', 'wasm-opt']);
  assert.deepEqual(Object.keys(j.kernel).sort(), ['release', 'version']);
  assert.equal(j.kernel.release, os.release());
  assert.equal(j.cpu.logicalCores, os.availableParallelism());
  assert.equal(j.seed, 7);
  assert.equal(j.quick, true);
  assert.equal(j.node, process.version);
  assert.deepEqual(j.commandLine, ['node', 'suite', '--quick']);
  assert.equal(typeof j.loadAverage['1m'], 'number');
  assert.ok(typeof j.cpuGovernor === 'object' || /^unreadable: /.test(j.cpuGovernor));
  assert.throws(() => writeEnvJson(dir, env), /EEXIST/);
});

test('comparison: ratio of medians with a bootstrap CI per function', () => {
  const gen = createRng(3);
  const raw: RawRow[] = [];
  for (const fn of ['f1', 'f2']) {
    for (let i = 0; i < 50; i++) {
      raw.push(row({ function: fn, variant: 'wasm', mode: 'warm', metric: 'latency', iteration: i, value: 300 + gen() }));
      raw.push(row({ function: fn, variant: 'native', mode: 'warm', metric: 'latency', iteration: i, value: 100 + gen() }));
    }
  }
  raw.push(row({ function: 'f3', variant: 'wasm', mode: 'warm', metric: 'latency', value: 5 }));
  const rows = compareMedians({
    rows: raw, metric: 'latency', path: 'in-process', numerator: { variant: 'wasm', mode: 'warm' },
    denominator: { variant: 'native', mode: 'warm' }, rng: createRng(1), iterations: 500,
  });
  assert.equal(rows.length, 3);
  const f1 = rows[0]!;
  assert.equal(f1.function, 'f1');
  assert.equal(f1.n_numerator, 50);
  assert.equal(f1.ratio, f1.median_numerator / f1.median_denominator);
  assert.ok(f1.ratio_ci95_lo < f1.ratio && f1.ratio < f1.ratio_ci95_hi);
  assert.ok(f1.ratio_ci95_lo > 2.95 && f1.ratio_ci95_hi < 3.05);
  assert.equal(rows[2]?.n_denominator, 0);
  assert.ok(Number.isNaN(rows[2]?.ratio));
  const file = path.join(tmp(), 'comparison.csv');
  writeComparisonCsv(file, rows);
  assert.equal(fs.readFileSync(file, 'utf8').split('\n')[0], COMPARISON_COLUMNS.join(','));
});

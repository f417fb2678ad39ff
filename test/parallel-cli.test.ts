// experiments/parallel.mjs as a user runs it: the quick mode end to end on small inputs (every
// implementation, oversubscribed counts flagged, the fan-out with a pool of two), and a fan-out job
// whose invocation fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../harness/paths.js';
import { readRawCsv } from '../harness/results/raw-writer.js';
import { readSummaryCsv } from '../harness/results/summarize.js';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'parallel-cli-'));
process.on('exit', () => fs.rmSync(scratch, { recursive: true, force: true }));
const cores = os.availableParallelism();

function run(args: string[]) {
  return spawnSync(process.execPath, [path.join(repoRoot, 'experiments', 'parallel.mjs'), '--quick', '--no-notebooks', '--reps', '2', '--warmup', '0', ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 240_000 });
}

test('quick mode end to end: every implementation of every kernel, oversubscription flagged, fan-out over a pool of 2', () => {
  const out = path.join(scratch, 'quick');
  const r = run(['--out', out, '--kernel-sizes', 'reduce:5003,histogram:9001,matmul:17,spmv:301', '--threads', `1,${cores + 1}`,
    '--fanout-n', '1,3', '--fanout-pools', '2', '--fanout-substrates', 'wasm-cold,native', '--fanout-bytes', '4096']);
  assert.equal(r.status, 0, r.stderr);
  const rows = readSummaryCsv(path.join(out, 'summary.csv'));
  const time = rows.filter((x) => x.metric === 'time' && x.status === 'ok');
  for (const k of ['reduce', 'histogram', 'matmul', 'spmv']) {
    for (const v of ['native', 'wasm', 'wasm-simd', 'wasm-threads', 'ebpf']) {
      assert.ok(time.some((x) => x.experiment === 'parallel' && x.variant === v && x.function === k && /^threads=1;size=\d+$/.test(x.params)), `${v}/${k} threads=1`);
    }
    const size = { reduce: 5003, histogram: 9001, matmul: 17, spmv: 301 }[k];
    for (const v of ['native', 'wasm-threads', 'ebpf']) {
      assert.ok(time.some((x) => x.variant === v && x.function === k && x.params === `threads=${cores + 1};size=${size};oversubscribed=true`), `${v}/${k} oversubscribed`);
    }
    assert.ok(time.some((x) => x.variant === 'wasm-threads' && x.mode === 'thread-spawn' && x.function === k && x.params === `threads=${cores + 1};size=${size};oversubscribed=true`), `wasm-threads thread-spawn/${k}`);
    // wasm and wasm-simd are one thread only
    assert.ok(!time.some((x) => (x.variant === 'wasm' || x.variant === 'wasm-simd') && x.function === k && !x.params.startsWith('threads=1;')));
  }
  const jobs = rows.filter((x) => x.metric === 'job_time' && x.status === 'ok');
  for (const v of ['wasm', 'native']) for (const n of [1, 3]) assert.ok(jobs.some((x) => x.variant === v && x.params === `n=${n};pool=2;corpus_bytes=4096`), `fan-out ${v} n=${n}`);
  assert.ok(rows.some((x) => x.metric === 'straggler' && x.status === 'ok'));
  for (const f of ['parallel-scaling', 'parallel-ratio', 'parallel-fanout']) assert.ok(fs.existsSync(path.join(out, 'figures', `${f}.png`)), f);
  const report = fs.readFileSync(path.join(out, 'parallel.txt'), 'utf8');
  assert.match(report, /WASM\/native wasm-simd\s+geomean\s+\d+\.\d\dx/);
  assert.match(report, /\(\* oversubscribed: more threads than CPUs\)/);
  const env = JSON.parse(fs.readFileSync(path.join(out, 'env.json'), 'utf8'));
  assert.ok(env.extra.notes.some((n: string) => /wasm32-wasi-threads sysroot/.test(n)), 'the reason for explicit workers is in the run notes');
});

test('a fan-out invocation that fails fails the job with the reason; its answered parts are kept, marked incomplete', () => {
  const out = path.join(scratch, 'failing');
  const r = run(['--out', out, '--kernels', 'reduce', '--kernel-sizes', 'reduce:100', '--threads', '1', '--parallel-variants', 'native',
    '--fanout-n', '3', '--fanout-pools', '2', '--fanout-substrates', 'wasm-cold', '--fanout-bytes', '3000', '--fanout-fail-at', '1']);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /FAILED wasm\/histogram\/cold\/gateway-fanout: .*invocation 1 of 3 failed \(function-error\).*2 of 3 parts answered, kept with incomplete=true/);
  const rows = readSummaryCsv(path.join(out, 'summary.csv'));
  assert.ok(rows.some((x) => x.status === 'failed' && x.variant === 'wasm' && /invocation 1 of 3 failed/.test(x.note)));
  assert.ok(!rows.some((x) => x.metric === 'job_time' && x.status === 'ok'), 'no job time for a failed job');
  const raw = readRawCsv(path.join(out, 'raw.csv')).filter((x) => x.metric === 'invocation_time');
  assert.ok(raw.length >= 2 && raw.every((x) => x.params.endsWith(';incomplete=true')), JSON.stringify(raw.map((x) => x.params)));
});

// The sockmap report's logic on planted rows: which series is compared with which, the 20% verdict,
// and the run-count proof lines (equal, or not, and said so).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sockmapReport } from '../harness/experiments/sockmap.js';
import type { RawRow } from '../harness/results/schema.js';

const P = 'payload=64;gateway_cpus=1;client_cpus=1';
function lat(variant: string, pathName: string, median: number, n = 41): RawRow[] {
  // values median-2 … median+2 around the median, so the medians are exact
  return Array.from({ length: n }, (_, i) => ({ experiment: 'sockmap', variant, function: 'noop', mode: 'warm', path: pathName, metric: 'latency', params: P, iteration: i, value: median - 2 + (4 * i) / (n - 1), unit: 'us' }));
}
function proof(pathName: string, msgs: number, runs: number): RawRow[] {
  const base = { experiment: 'sockmap', variant: 'wasm+sockmap', function: 'noop', mode: 'warm', path: pathName, params: P, iteration: 0 };
  return [
    { ...base, metric: 'msgs_sent', value: msgs, unit: 'msgs' },
    { ...base, metric: 'skmsg_runs', value: runs, unit: 'runs' },
    { ...base, metric: 'skmsg_redirected', value: runs, unit: 'msgs' },
    { ...base, metric: 'bytes_sent', value: msgs * 80, unit: 'B' },
    { ...base, metric: 'skmsg_bytes', value: runs * 80, unit: 'B' },
  ];
}

test('the report compares relayed and spliced with the baseline gateway path, gives the verdicts, and checks the proof', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fxh-smreport-'));
  try {
    const raw = [...lat('wasm+tcp', 'gateway', 70), ...lat('wasm+sockmap', 'gateway', 63), ...lat('wasm+sockmap', 'splice', 35), ...proof('gateway', 400, 400), ...proof('splice', 200, 199)];
    const lines = sockmapReport({ raw, summary: [], skips: [] }, dir);
    const relayed = lines.find((l) => l.startsWith('relayed'));
    const spliced = lines.find((l) => l.startsWith('spliced'));
    assert.match(relayed ?? '', /63\.00 us with sockmap vs 70\.00 us without: 10\.0% lower .* FAIL/);
    assert.match(spliced ?? '', /35\.00 us with sockmap vs 70\.00 us without: 50\.0% lower .* PASS/);
    assert.match(lines.find((l) => l.startsWith('proof   gateway/latency')) ?? '', /sent 400 msgs, sk_msg run_cnt 400 \(equal\)/);
    assert.match(lines.find((l) => l.startsWith('proof   splice/latency')) ?? '', /sent 200 msgs, sk_msg spliced 199 \(99\.5%\).*differ/);
    assert.ok(fs.readFileSync(path.join(dir, 'sockmap-report.txt'), 'utf8').includes(spliced!));
    assert.match(fs.readFileSync(path.join(dir, 'sockmap-comparison.csv'), 'utf8'), /splice/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('PASS needs the lower bound of the reduction\'s CI at the target, not the point estimate', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fxh-smreport-'));
  try {
    // spliced median 54 against 70 (22.9% lower), but half its samples spread far up: the CI reaches below 20%
    const wide = lat('wasm+sockmap', 'splice', 54, 21).map((r, i) => ({ ...r, value: i < 10 ? 40 + i : i === 10 ? 54 : 55 + 2 * i }));
    const lines = sockmapReport({ raw: [...lat('wasm+tcp', 'gateway', 70), ...wide], summary: [], skips: [] }, dir);
    const spliced = lines.find((l) => l.startsWith('spliced')) ?? '';
    const m = /: ([\d.]+)% lower \(95% CI ([\d.-]+)\.\.([\d.-]+)%\)/.exec(spliced);
    assert.ok(m, spliced);
    assert.ok(Number(m[1]) >= 20 && Number(m[2]) < 20, `the planted case: estimate over 20%, lower bound under it: ${spliced}`);
    assert.match(spliced, /FAIL/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

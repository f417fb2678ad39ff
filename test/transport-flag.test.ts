// --transport: one gateway path per transport, measured and verified; bad values refused; RDMA with
// no device and no guest skipped with the reason written into the results.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../harness/paths.js';
import { readSummaryCsv } from '../harness/results/summarize.js';
import { rdmaDevices } from '../harness/experiment/in-guest.js';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'transport-test-'));
process.on('exit', () => fs.rmSync(scratch, { recursive: true, force: true }));

function warm(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [path.join(repoRoot, 'experiments', 'warm.mjs'), '--quick', '--variants', 'wasm', '--functions', 'noop', '--reps', '5', '--no-notebooks', ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 180_000,
    env: { ...process.env, ...env },
  });
}

test('--transport unix,tcp measures the gateway path once per transport, each verified', () => {
  const dir = path.join(scratch, 'both');
  const r = warm(['--transport', 'unix,tcp', '--out', dir]);
  assert.equal(r.status, 0, r.stderr);
  const rows = readSummaryCsv(path.join(dir, 'summary.csv'));
  const paths = rows.filter((x) => x.status === 'ok').map((x) => x.path).sort();
  assert.deepEqual(paths, ['direct', 'gateway', 'gateway-tcp']);
  for (const row of rows) assert.ok(row.n >= 5, `${row.path}: ${row.n} samples`);
});

test('--transport refuses what it does not know', () => {
  const r = warm(['--transport', 'tcp,carrier-pigeon']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--transport takes unix, tcp, rdma/);
});

test('--transport rdma with no RDMA device and no guest image: the rdma path is skipped with both reasons, the rest measured', { skip: rdmaDevices().length ? 'this machine has an RDMA device' : false }, () => {
  const dir = path.join(scratch, 'no-rdma');
  const r = warm(['--transport', 'unix,rdma', '--out', dir], { FXH_GUEST_IMAGE_DIR: path.join(scratch, 'no-such-image') });
  assert.equal(r.status, 0, r.stderr);
  const rows = readSummaryCsv(path.join(dir, 'summary.csv'));
  assert.deepEqual(rows.filter((x) => x.status === 'ok').map((x) => x.path).sort(), ['direct', 'gateway']);
  const skipped = rows.filter((x) => x.status === 'skipped');
  assert.equal(skipped.length, 1, JSON.stringify(skipped));
  assert.match(skipped[0]!.note, /gateway-rdma path: no RDMA device on this machine.*no SoftRoCE guest can boot here \(no guest image in/);
});

test('--transport rdma into an existing --out is refused before any guest boots', { skip: rdmaDevices().length ? 'this machine has an RDMA device' : false }, () => {
  const dir = path.join(scratch, 'exists');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'keep.txt'), 'mine');
  const t0 = Date.now();
  const r = warm(['--transport', 'rdma', '--out', dir]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /already exists; refusing to reuse or overwrite it/);
  assert.deepEqual(fs.readdirSync(dir), ['keep.txt']);
  assert.ok(Date.now() - t0 < 20_000, 'no guest was booted');
});

// The whole platform over RDMA: `--transport tcp,rdma` with no RDMA device here runs the experiment inside
// the SoftRoCE guest; the gateway path is measured over both transports there, for a WASM and a native
// executor, every answer verified, and the results come back into a fresh folder here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../harness/paths.js';
import { readSummaryCsv } from '../harness/results/summarize.js';
import { rdmaDevices } from '../harness/experiment/in-guest.js';
import { guestUnavailable } from '../harness/rdma/guest.js';

const skip = rdmaDevices().length ? 'this machine has an RDMA device: the guest is not used' : guestUnavailable() ?? false;

test('warm --transport tcp,rdma runs in the SoftRoCE guest: gateway-tcp and gateway-rdma measured for wasm and native, substrate recorded', { skip, timeout: 900_000 }, () => {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'fxh-rdma-platform-'));
  try {
    const dir = path.join(scratch, 'run');
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'experiments', 'warm.mjs'), '--quick', '--variants', 'wasm,native', '--functions', 'noop', '--transport', 'tcp,rdma', '--reps', '5', '--warmup', '1', '--no-notebooks', '--out', dir], {
      cwd: repoRoot, encoding: 'utf8', timeout: 880_000,
    });
    assert.equal(r.status, 0, `${r.stderr.slice(-3000)}`);
    const rows = readSummaryCsv(path.join(dir, 'summary.csv'));
    for (const v of ['wasm', 'native']) {
      for (const p of ['gateway-tcp', 'gateway-rdma']) {
        const row = rows.find((x) => x.variant === v && x.path === p && x.status === 'ok');
        assert.ok(row && row.n >= 5, `${v} over ${p}: ${JSON.stringify(rows.filter((x) => x.variant === v).map((x) => [x.path, x.status, x.n]))}`);
        assert.match(row.params, /substrate=softroce-guest-(tcg|kvm)/);
      }
    }
    const env = JSON.parse(fs.readFileSync(path.join(dir, 'env.json'), 'utf8'));
    assert.equal(env.substrate.kind, 'softroce-guest');
    assert.match(env.kernel.release, /amd64/, 'env.json was written inside the guest');
    assert.ok(fs.statSync(path.join(dir, 'guest', 'console.log')).size > 0);
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8')).state, 'complete');
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
});

// Scratch folders name their owner's pid; the start-up cleanup removes those whose owner is gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cleanupStaleScratch, scratchDir } from '../harness/platform/scratch.js';

test('scratchDir names this process; cleanup removes dead owners\' folders only, and says which', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'scratch-test-'));
  try {
    const mine = scratchDir('run', tmp);
    assert.match(path.basename(mine), new RegExp(`^fxh-run-${process.pid}-`));
    const dead = path.join(tmp, 'fxh-gw-999999-abcdef');
    const alive = path.join(tmp, 'fxh-gateway-4242-abcdef');
    const chain = path.join(tmp, 'fxh-chain-999999-3-abcdef');
    const other = path.join(tmp, 'fxh-smtest-abcdef');
    for (const d of [dead, alive, chain, other]) fs.mkdirSync(path.join(d, 'inner'), { recursive: true });
    fs.writeFileSync(path.join(tmp, 'fxh-file-999999-x'), 'not a folder');
    const lines = cleanupStaleScratch(tmp, (pid) => pid === 4242);
    assert.deepEqual(lines.sort(), [`removed stale ${chain} (pid 999999 is gone)`, `removed stale ${dead} (pid 999999 is gone)`]);
    for (const d of [mine, alive, other, path.join(tmp, 'fxh-file-999999-x')]) assert.ok(fs.existsSync(d), d);
    assert.throws(() => scratchDir('Bad-Kind', tmp), /lower-case/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

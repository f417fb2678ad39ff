// Executor pools in the gateway (gateway-main --pool N): calls go to the member with the fewest calls
// in flight. Seen through the test-only counter fixture, whose warm instance counts its own calls:
// one executor counts every call, a pool of two splits concurrent calls between two instances.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { startGateway } from '../harness/experiment/gateway-process.js';
import { gatewayMain } from '../harness/paths.js';

async function counts(pool: number, concurrent: number): Promise<string[]> {
  const gw = await startGateway({ memoryLimitMiB: 256, pool });
  try {
    const c = await gw.connect();
    const call = () => c.invoke({ variant: 'wasm', fn: 'counter', mode: 'warm', input: new Uint8Array(0), timeoutMs: 10_000 });
    // both executors started and serving before the concurrent round
    for (const r of await Promise.all(Array.from({ length: pool }, call))) assert.equal(r.status, 'ok');
    const rs = await Promise.all(Array.from({ length: concurrent }, call));
    return rs.map((r) => Buffer.from(r.output).toString().trim()).sort();
  } finally {
    await gw.stop();
  }
}

test('a pool of two executors shares concurrent calls; one executor takes them all', async () => {
  // pool 1: the warm-up call was 1, the concurrent ones 2 and 3 on the same instance
  assert.deepEqual(await counts(1, 2), ['2', '3']);
  // pool 2: the two warm-up calls went one to each member (1 and 1), the next two again one each
  assert.deepEqual(await counts(2, 2), ['2', '2']);
});

test('a bad --pool is refused with the range', () => {
  const r = spawnSync(process.execPath, [gatewayMain, '--binary', `unix:${path.join('/tmp', `fxh-pool-${process.pid}.sock`)}`, '--pool', '0'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--pool wants executors per variant, an integer in 1…64, not "0"/);
});

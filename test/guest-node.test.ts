// The fourth node kind: an agent inside a QEMU guest, reached at a forwarded port. A child there forks
// a parent agent on this machine (it reaches the host at 10.0.2.2) and answers with the parent's state.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { AgentClient } from '../harness/platform/agent-client.js';
import { launchNode, parseInventory } from '../harness/platform/nodes/inventory.js';
import { processesNaming } from '../harness/platform/proc-sweep.js';
import { guestUnavailable } from '../harness/rdma/guest.js';

const unavailable = guestUnavailable();

test('a guest node: bad fields are refused', () => {
  assert.throws(() => parseInventory('[{"name":"g","kind":"guest","cpus":0}]'), /"cpus" is a positive integer/);
  assert.throws(() => parseInventory('[{"name":"g","kind":"nosuch"}]'), /"kind" is one of local, netns, ssh, guest/);
});

test('a guest node forks a parent on this machine: the child in the guest answers 4 after the parent\'s 3 calls; stopping it ends the guest', { skip: unavailable ?? false, timeout: 400_000 }, async () => {
  const g = await launchNode({ name: 'g1', kind: 'guest' }, { variants: ['wasm-fork'], memoryLimitMiB: 64 });
  const p = await launchNode({ name: 'p', kind: 'local' }, { variants: ['wasm-fork'], memoryLimitMiB: 64, listen: 'tcp:127.0.0.1:0' }).catch(async (e) => {
    await g.stop();
    throw e;
  });
  const guestDir = /fxh\.out=(\S+)/.exec(fs.readFileSync(`/proc/${g.child.pid}/cmdline`, 'utf8').split('\0').join(' '))?.[1];
  try {
    assert.match(g.endpoint, /^tcp:127\.0\.0\.1:\d+$/);
    assert.equal(g.ready.info.node, 'g1');
    const parent = await AgentClient.connect(p.endpoint);
    const child = await AgentClient.connect(g.endpoint);
    const d = await parent.snapshotRegister('wasm-fork', 'counter', new Uint8Array(0), 3);
    const port = /:(\d+)$/.exec(p.endpoint)![1];
    const r = await child.forkFrom(`tcp:10.0.2.2:${port}`, d, 'dirty', new Uint8Array(0));
    assert.equal(Buffer.from(r.output).toString(), '4\n');
    parent.close();
    child.close();
  } finally {
    await Promise.all([g.stop(), p.stop()]);
  }
  assert.ok(guestDir, 'the guest was given a run folder');
  assert.deepEqual(processesNaming(`fxh.out=${guestDir}`), [], 'the guest is gone');
  assert.ok(!fs.existsSync(guestDir!), 'its run folder is removed');
});

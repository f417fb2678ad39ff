// Function chains (experiment `chains`): a 3-stage chain of `chainstep` gives input + 3 every way —
// through the gateway stage by stage (wasm, and containers when runc works), directly between chain
// nodes over sockmap redirects (payload in each message), and SPRIGHT-style (payload in /dev/shm,
// only 16-byte descriptors on the sockets: sk_msg sees 16 B per message, whatever the payload).
// Every call reports the time inside each stage's function, within that stage's time in the node.
// 1 MiB payloads go every way. Nothing is left behind: cgroups, programs, /dev/shm files, node processes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { platformCgroup } from '../harness/bpf/cgroup.js';
import { attachSockmap, sockmapCapability } from '../harness/bpf/sockmap.js';
import { SHM_DIR, processCpuNs, startChain, type Chain } from '../harness/chains/chain.js';
import { chainExpected, chainPayload } from '../harness/functions/workloads/chainstep.js';
import { startGateway } from '../harness/experiment/gateway-process.js';
import { pidAlive } from '../harness/platform/proc-memory.js';
import { ownCgroups } from './helpers.js';

const cap = sockmapCapability();
const skipBpf = cap.ok ? false : `eBPF unavailable here: ${cap.reason}`;
const ownShm = () => fs.readdirSync(SHM_DIR).filter((n) => n.startsWith(`fxh-chain-${process.pid}-`));
const same = (a: Uint8Array, b: Uint8Array) => assert.ok(Buffer.from(a).equals(Buffer.from(b)), `outputs differ (${a.length} vs ${b.length} bytes)`);

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('through the gateway, stage by stage: wasm and container give input + 3 (4 KiB and 1 MiB), the executor reports its time inside', async (t) => {
  const gw = await startGateway({ memoryLimitMiB: 256 });
  cleanups.push(() => gw.stop());
  const client = await gw.connect();
  for (const size of [4096, 1 << 20]) {
    const input = chainPayload(size, 1);
    for (const variant of ['wasm', 'container']) {
      let x: Uint8Array = input;
      let unavailable = '';
      for (let i = 0; i < 3 && !unavailable; i++) {
        const a = process.hrtime.bigint();
        const r = await client.invoke({ variant, fn: 'chainstep', mode: 'warm', input: x, timeoutMs: 10_000 });
        const roundTrip = Number(process.hrtime.bigint() - a);
        if (r.status === 'unavailable' && variant === 'container') unavailable = Buffer.from(r.output).toString();
        else {
          assert.equal(r.status, 'ok', Buffer.from(r.output).toString());
          assert.ok(r.serverNs > 0 && r.serverNs < roundTrip, `${variant}: serverNs ${r.serverNs} within the round trip ${roundTrip}`);
          x = r.output;
        }
      }
      if (unavailable) {
        t.diagnostic(`container skipped: ${unavailable}`);
        continue;
      }
      same(x, chainExpected(input, 3));
    }
  }
  await gw.stop();
});

test('chain nodes without a cgroup (plain TCP): copy and descriptor modes give input + N', async () => {
  const chain = await startChain({ nodes: 3 });
  cleanups.push(() => chain.stop());
  assert.equal(ownShm().length, 1);
  for (const size of [1, 64, 65536]) {
    const input = chainPayload(size, 2);
    for (const stages of [1, 3]) {
      for (const mode of ['copy', 'desc'] as const) {
        const r = await chain.call(mode, input, stages);
        same(r.output, chainExpected(input, stages));
        assert.equal(r.hopNs.length, stages + 1);
        assert.ok(r.hopNs.every((h) => h > 0), `hops ${r.hopNs}`);
        const sum = r.hopNs.reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(sum - r.e2eNs) < 1000, `hops add up to e2e: ${sum} vs ${r.e2eNs}`);
        // the time inside each function lies within that stage's time in its node, and within its hop
        assert.equal(r.computeNs.length, stages);
        r.computeNs.forEach((c, i) => {
          assert.ok(c > 0 && c <= r.stageNs[i]! && r.stageNs[i]! <= r.hopNs[i]!, `stage ${i + 1}: compute ${c} <= in node ${r.stageNs[i]} <= hop ${r.hopNs[i]}`);
        });
      }
    }
  }
  assert.ok(processCpuNs(chain.pids) > 0);
  const pids = chain.pids;
  await chain.stop();
  assert.deepEqual(ownShm(), []);
  assert.ok(pids.every((p) => !pidAlive(p)), 'node processes gone');
});

test('over sockmap (64 B, 64 KiB, 1 MiB): copy moves the payload, descriptors move 16 B per message; both give input + 3', { skip: skipBpf }, async () => {
  const cg = platformCgroup('chaintest');
  cleanups.push(() => cg.detach());
  const sm = attachSockmap(cg);
  cleanups.push(() => sm.detach());
  const chain: Chain = await startChain({ nodes: 3, cgroupPath: cg.path });
  cleanups.push(() => chain.stop());
  const calls = 20;
  for (const size of [64, 65536, 1 << 20]) {
    const input = chainPayload(size, 3);
    for (const mode of ['copy', 'desc'] as const) {
      await chain.call(mode, input, 3); // settle
      const s0 = sm.stats();
      const b0 = { ...chain.sent };
      for (let i = 0; i < calls; i++) {
        const r = await chain.call(mode, input, 3);
        same(r.output, chainExpected(input, 3));
        assert.ok(r.computeNs.every((c, k) => c > 0 && c <= r.stageNs[k]!), `${mode}/${size}: compute within the node: ${r.computeNs} vs ${r.stageNs}`);
      }
      const s1 = sm.stats();
      const msgs = chain.sent.msgs - b0.msgs;
      const bytes = chain.sent.bytes - b0.bytes;
      assert.equal(msgs, calls * 4);
      const skBytes = s1.bytes - s0.bytes;
      const redirected = s1.redirected - s0.redirected;
      assert.equal(skBytes, bytes, `${mode}/${size}: sk_msg saw every byte written`);
      if (mode === 'desc') {
        assert.equal(skBytes, 16 * msgs, `descriptors: ${skBytes} bytes for ${msgs} messages`);
        assert.equal(redirected, msgs, 'every descriptor redirected');
        assert.equal(s1.skMsgRunCount - s0.skMsgRunCount, msgs);
      } else {
        assert.equal(skBytes, (16 + size) * msgs);
        assert.ok(redirected >= msgs, `copy: ${redirected} redirects for ${msgs} messages`);
      }
    }
  }
  const pids = chain.pids;
  await chain.stop();
  sm.detach();
  cg.detach();
  assert.deepEqual(ownShm(), []);
  assert.deepEqual(ownCgroups(), []);
  assert.ok(pids.every((p) => !pidAlive(p)), 'node processes gone');
});

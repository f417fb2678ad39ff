// Remote fork with the pages pushed (push-to to the parent, fork-from with push {tag} to the child),
// between real agents in network namespaces: the state carries over as it does when the child pulls,
// whichever request arrives first; a pushed page that is corrupted is refused naming its checksum; a
// push that never comes, a child that never connected and a parent that dies mid-push are clear errors,
// and the child goes on. Nothing is left behind.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadCatalog } from '../harness/functions/catalog.js';
import { AgentClient } from '../harness/platform/agent-client.js';
import { PUSH_WAIT_MS } from '../harness/platform/agent-fork.js';
import { RegionTable, listenLinks, type Link } from '../harness/platform/link.js';
import { acquireFabric, releaseFabric } from '../harness/platform/nodes/fabric.js';
import { V, assertNothingLeft, netnsSkip, text, throttle, withPair } from './fork-nodes.js';
import { launchNode } from '../harness/platform/nodes/inventory.js';
import { WasmRemoteFork } from '../harness/variants/wasm/remote-fork.js';
import { pullPlan } from '../harness/variants/wasm/remote-pull.js';
import { prepareImage } from '../harness/variants/wasm/snapshot.js';
import { statefillAnswer } from '../harness/functions/workloads/statefill.js';

const skip = netnsSkip();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('pushed remote fork across namespaces: the state carries over in eager, dirty and prefetch, whichever request comes first, moving what a pull moves', { skip }, async () => {
  await withPair(async ({ a, parent, child }) => {
    const d = await parent.snapshotRegister(V, 'counter', new Uint8Array(0), 3);
    let tag = 100;
    for (const copy of ['eager', 'dirty', 'prefetch'] as const) {
      const pulled = await child.forkFrom(a.endpoint, d, copy, new Uint8Array(0));
      const t = ++tag;
      const forked = child.forkFrom(a.endpoint, d, copy, new Uint8Array(0), { tag: t });
      const pushed = await parent.pushTo('child', d, copy, t);
      const r = await forked;
      assert.equal(text(r.output), '4\n', `copy ${copy}`);
      const plan = pullPlan(d, copy);
      assert.deepEqual(pushed, { pieces: plan.length, bytes: plan.reduce((n, p) => n + p.length, 0) });
      assert.equal(r.bytesBeforeResponse, pulled.bytesBeforeResponse, `copy ${copy}: a push moves what a pull moves before the answer`);
    }
    // the parent's push before the child's request: the child's link holds the pieces until it expects them
    const t = ++tag;
    const early = parent.pushTo('child', d, 'dirty', t);
    await sleep(300);
    assert.equal(text((await child.forkFrom(a.endpoint, d, 'dirty', new Uint8Array(0), { tag: t })).output), '4\n');
    await early;
    // 2 MiB of state
    const s = await parent.snapshotRegister(V, 'statefill', Buffer.from('2'), 1);
    const t2 = ++tag;
    const f2 = child.forkFrom(a.endpoint, s, 'dirty', Buffer.from('2'), { tag: t2 });
    await parent.pushTo('child', s, 'dirty', t2);
    assert.equal(text((await f2).output), statefillAnswer(2, 2));
  });
});

test('pushed remote fork: a push that never comes, and a child that never connected, are clear errors after their wait; the child goes on', { skip }, async () => {
  await withPair(async ({ a, parent, child }) => {
    const d = await parent.snapshotRegister(V, 'counter', new Uint8Array(0), 3);
    const [never, nobody] = await Promise.allSettled([child.forkFrom(a.endpoint, d, 'dirty', new Uint8Array(0), { tag: 5 }), parent.pushTo('nobody', d, 'dirty', 6)]);
    assert.equal(never.status, 'rejected');
    assert.match((never as PromiseRejectedResult).reason.message, new RegExp(`pushed as tag 5\\) failed: piece 0 of tag 5 \\(\\[0, ${d.headerBytes}\\) of region "${d.region}"\\) was not pushed by .* within ${PUSH_WAIT_MS} ms`));
    assert.equal(nobody.status, 'rejected');
    assert.match((nobody as PromiseRejectedResult).reason.message, new RegExp(`push of ${d.region} \\(copy dirty\\) to child nobody as tag 6 failed: no child agent "nobody" opened a link to parent within ${PUSH_WAIT_MS} ms \\(connected children: child\\)`));
    // the late pieces of tag 5 are dropped, not left holding the child's link: a pull, then a push, work
    await parent.pushTo('child', d, 'dirty', 5);
    assert.equal(text((await child.forkFrom(a.endpoint, d, 'dirty', new Uint8Array(0))).output), '4\n');
    const f = child.forkFrom(a.endpoint, d, 'dirty', new Uint8Array(0), { tag: 7 });
    await parent.pushTo('child', d, 'dirty', 7);
    assert.equal(text((await f).output), '4\n');
  });
});

test('pushed remote fork: a corrupted pushed page is refused naming its checksum, and so is a push the parent cannot make', { skip }, async () => {
  const fabric = acquireFabric();
  const b = await launchNode({ name: 'child', kind: 'netns' }, { variants: [V], memoryLimitMiB: 64 });
  const regions = new RegionTable();
  // a parent of our own at the fabric's host address: it pushes on the link the child opens and introduces
  let fromChild: Link | null = null;
  const listener = await listenLinks(`tcp:${fabric.hostAddress}:0`, (l) => l.onFrames((fs) => {
    for (const f of fs) if (!(f instanceof Error) && f.type === 'hello' && f.info.role === 'peer') fromChild = l;
  }), { regions });
  try {
    const fn = (await loadCatalog()).get('counter');
    const maxPages = Math.floor((64 * 2 ** 20) / 65536);
    const good = new RegionTable();
    const d = await new WasmRemoteFork(V, maxPages).snapshotRegister(prepareImage({ name: fn.name, path: fn.wasm!.path, abi: fn.wasm!.abi }, maxPages), new Uint8Array(0), 3, good);
    const bytes = Buffer.from(good.slice(d.region, 0, d.totalBytes) as Uint8Array);
    const child = await AgentClient.connect(b.endpoint);
    /** the child forks from region `name` pushed as `tag`; the pieces come from region `from` (default: that region) */
    const push = async (name: string, data: Uint8Array, tag: number, from = name) => {
      regions.register(name, data);
      const sd = { ...d, region: name };
      const forked = child.forkFrom(listener.endpoint, sd, 'dirty', new Uint8Array(0), { tag });
      while (!fromChild) await sleep(5);
      pullPlan(sd, 'dirty').forEach((p, i) => fromChild!.pushRegion!(tag, i, from, p.offset, p.length));
      return forked;
    };
    // the child takes the pushed pages, not the region's: pushed from good bytes, a region of corrupted ones forks fine
    const decoy = Buffer.from(bytes);
    decoy[d.headerBytes + 9]! ^= 1;
    regions.register('good', bytes);
    assert.equal(text((await push('decoy', decoy, 1, 'good')).output), '4\n');
    const page = Buffer.from(bytes);
    page[d.headerBytes + 5]! ^= 1;
    await assert.rejects(push('page', page, 2), /snapshot corrupted: checksum \(fxh64\) of page 0/);
    const forked = child.forkFrom(listener.endpoint, { ...d, region: 'gone' }, 'dirty', new Uint8Array(0), { tag: 3 });
    await sleep(100);
    fromChild!.pushFailed!(3, 'no region "gone" is registered here');
    await assert.rejects(forked, /will not push tag 3: no region "gone" is registered here/);
    assert.equal(text((await push('again', bytes, 4)).output), '4\n', 'the child goes on');
    await assert.rejects(push('decoy2', decoy, 5), /snapshot corrupted: checksum \(fxh64\) of page 0/);
    child.close();
  } finally {
    await b.stop();
    await listener.close();
    releaseFabric(fabric);
  }
  assertNothingLeft([b]);
});

test('pushed remote fork: the parent dying mid-push gives the child a clear error; the child goes on', { skip }, async () => {
  await withPair(async ({ a, parent, child }) => {
    const d = await parent.snapshotRegister(V, 'statefill', Buffer.from('8'), 1);
    throttle(a); // 8 MiB at 16 Mbit/s: about 4 s
    const orphan = child.forkFrom(a.endpoint, d, 'dirty', Buffer.from('8'), { tag: 1 });
    void parent.pushTo('child', d, 'dirty', 1).catch(() => {});
    await sleep(700);
    a.child.kill('SIGKILL');
    await assert.rejects(orphan, new RegExp(`fork of statefill from ${a.endpoint.replace(/\./g, '\\.')} .*pushed as tag 1\\) failed: the link to ${a.endpoint.replace(/\./g, '\\.')} ended`));
    await child.ping();
    assert.equal((await child.hello()).node, 'child');
  });
});

// Remote fork between real agents in network namespaces of their own: the state carries over in every
// copy mode, bad snapshots are refused naming the checksum, and either side vanishing in the middle of
// the transfer is a clear error on the other, which goes on serving. Nothing is left behind.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { loadCatalog } from '../harness/functions/catalog.js';
import { AgentClient } from '../harness/platform/agent-client.js';
import { RegionTable, connectLink, listenLinks, regionSource } from '../harness/platform/link.js';
import { acquireFabric, releaseFabric } from '../harness/platform/nodes/fabric.js';
import { V, assertNothingLeft, netnsSkip, pair, text, throttle, withPair } from './fork-nodes.js';
import { launchNode } from '../harness/platform/nodes/inventory.js';
import type { LaunchedNode } from '../harness/platform/nodes/kind.js';
import { pidAlive } from '../harness/platform/proc-memory.js';
import type { SnapshotDescriptor } from '../harness/platform/remote-fork.js';
import { WasmRemoteFork } from '../harness/variants/wasm/remote-fork.js';
import { prepareImage } from '../harness/variants/wasm/snapshot.js';
import { statefillAnswer } from '../harness/functions/workloads/statefill.js';

const skip = netnsSkip();

test('remote fork across namespaces: a counter parent after 3 calls gives a child that answers 4, in every copy mode (lazy: pages placed as the call faults on them)', { skip }, async () => {
  await withPair(async ({ a, parent, child }) => {
    const d = await parent.snapshotRegister(V, 'counter', new Uint8Array(0), 3);
    assert.ok(d.pages > 0 && d.totalBytes > d.headerBytes, JSON.stringify(d));
    for (const copy of ['eager', 'dirty', 'prefetch', 'lazy'] as const) {
      const r = await child.forkFrom(a.endpoint, d, copy, new Uint8Array(0));
      assert.equal(text(r.output), '4\n', `copy ${copy}`);
      // lazy reads only the pages the call touched (counter touches all of its few)
      if (copy === 'lazy') assert.ok(r.bytesMoved > d.headerBytes && r.bytesMoved <= d.totalBytes, `lazy moved ${r.bytesMoved} bytes`);
      else assert.ok(r.bytesMoved >= (copy === 'eager' ? d.imageBytes : d.totalBytes), `copy ${copy} moved ${r.bytesMoved} bytes`);
      assert.ok(r.forkNs > 0 && r.firstResponseNs >= r.forkNs);
    }
    // the child's fork did not touch the parent's state: a new snapshot after 3 more calls -> 7
    const d2 = await parent.snapshotRegister(V, 'counter', new Uint8Array(0), 6);
    assert.equal(text((await child.forkFrom(a.endpoint, d2, 'dirty', new Uint8Array(0))).output), '7\n');
    // the replaced snapshot's regions are gone
    await assert.rejects(child.forkFrom(a.endpoint, d, 'dirty', new Uint8Array(0)), /no region "snap\/wasm-fork\/counter\/1"/);
    // statefill: 2 MiB of state, the oracle is the parent's next call
    const s = await parent.snapshotRegister(V, 'statefill', Buffer.from('2'), 1);
    for (const copy of ['eager', 'dirty', 'prefetch', 'lazy'] as const) assert.equal(text((await child.forkFrom(a.endpoint, s, copy, Buffer.from('2'))).output), statefillAnswer(2, 2), `copy ${copy}`);
  });
});

test('remote fork: a truncated or corrupted snapshot region is refused naming the failed checksum', { skip }, async () => {
  const fabric = acquireFabric();
  const b = await launchNode({ name: 'child', kind: 'netns' }, { variants: [V], memoryLimitMiB: 64 });
  const regions = new RegionTable();
  const listener = await listenLinks(`tcp:${fabric.hostAddress}:0`, () => {}, { regions });
  try {
    // a parent of our own, serving regions from this process at the fabric's host address
    const fn = (await loadCatalog()).get('counter');
    const maxPages = Math.floor((64 * 2 ** 20) / 65536);
    const good = new RegionTable();
    const d = await new WasmRemoteFork(V, maxPages).snapshotRegister(prepareImage({ name: fn.name, path: fn.wasm!.path, abi: fn.wasm!.abi }, maxPages), new Uint8Array(0), 3, good);
    const bytes = Buffer.from(good.slice(d.region, 0, d.totalBytes) as Uint8Array);
    const child = await AgentClient.connect(b.endpoint);
    const offer = (name: string, data: Uint8Array, over: Partial<SnapshotDescriptor> = {}, copy: 'dirty' | 'lazy' = 'dirty') => {
      regions.register(name, data);
      regions.register(`${name}/image`, good.slice(d.imageRegion, 0, d.imageBytes) as Uint8Array);
      return child.forkFrom(listener.endpoint, { ...d, region: name, imageRegion: `${name}/image`, ...over }, copy, new Uint8Array(0));
    };
    assert.equal(text((await offer('good', bytes)).output), '4\n');
    const page = Buffer.from(bytes);
    page[d.headerBytes + 5]! ^= 1;
    await assert.rejects(offer('page', page), /snapshot corrupted: checksum \(fxh64\) of page 0/);
    // lazy checks each page before it places it: the call goes on over what it could not place, and is refused
    await assert.rejects(offer('lazypage', page, {}, 'lazy'), /lazy copy: snapshot corrupted: checksum \(fxh64\) of page 0/);
    assert.equal(text((await offer('lazygood', bytes, {}, 'lazy')).output), '4\n', 'the fault worker goes on after a failed fork');
    const head = Buffer.from(bytes);
    head[60]! ^= 1;
    await assert.rejects(offer('head', head), /header checksum \(sha256\) mismatch/);
    const cut = bytes.subarray(0, bytes.length - 100);
    await assert.rejects(offer('cut', cut, { totalBytes: cut.length }), /snapshot truncated: .*checksum \(fxh64\) of page \d+/);
    // the pages are asked for before the header arrives, where the descriptor says they start: a descriptor that disagrees is refused
    await assert.rejects(offer('shifted', bytes, { headerBytes: d.headerBytes + 8 }), new RegExp(`the descriptor gives a header of ${d.headerBytes + 8} bytes, the header itself ${d.headerBytes}`));
    // eager checks the image too
    const img = Buffer.from(good.slice(d.imageRegion, 0, d.imageBytes) as Uint8Array);
    img[img.length - 1]! ^= 1;
    regions.register('img', bytes);
    regions.register('img/image', img);
    await assert.rejects(child.forkFrom(listener.endpoint, { ...d, region: 'img', imageRegion: 'img/image' }, 'eager', new Uint8Array(0)), /snapshot image corrupted/);
    child.close();
  } finally {
    // the child's link to our listener goes with it; a listener's close waits for its links
    await b.stop();
    await listener.close();
    releaseFabric(fabric);
  }
  assertNothingLeft([b]);
});

test('remote fork: the child vanishing mid-transfer leaves the parent serving, and is reported; the parent vanishing gives the child a clear error', { skip }, async () => {
  const [a, b] = await pair();
  const c2 = await launchNode({ name: 'child2', kind: 'netns' }, { variants: [V], memoryLimitMiB: 64 });
  try {
    const parent = await AgentClient.connect(a.endpoint);
    const d = await parent.snapshotRegister(V, 'statefill', Buffer.from('8'), 1);
    throttle(a); // 8 MiB at 16 Mbit/s: about 4 s
    // the child dies mid-transfer
    const child = await AgentClient.connect(b.endpoint);
    const dying = child.forkFrom(a.endpoint, d, 'dirty', Buffer.from('8'));
    await new Promise((r) => setTimeout(r, 700));
    b.child.kill('SIGKILL');
    await assert.rejects(dying, /link to agent .* closed/);
    // the parent is unaffected: it answers, and another child forks from the same snapshot
    assert.equal((await parent.hello()).node, 'parent');
    const c = await AgentClient.connect(c2.endpoint);
    spawnSync('ip', ['netns', 'exec', a.netns!, 'tc', 'qdisc', 'del', 'dev', 'eth0', 'root']);
    assert.equal(text((await c.forkFrom(a.endpoint, d, 'dirty', Buffer.from('8'))).output), statefillAnswer(8, 2));
    assert.match(a.stderrTail(), /link tcp:.* ended: /);
    // the parent dies mid-transfer: the child's fork fails naming the link to the parent, and the child goes on
    throttle(a);
    const orphan = c.forkFrom(a.endpoint, d, 'eager', Buffer.from('8'));
    await new Promise((r) => setTimeout(r, 700));
    a.child.kill('SIGKILL');
    await assert.rejects(orphan, new RegExp(`refused \\(unavailable\\): fork of statefill from ${a.endpoint.replace(/\./g, '\\.')} .*failed: the link to ${a.endpoint.replace(/\./g, '\\.')} ended during a read`));
    await c.ping();
    parent.close();
    child.close();
    c.close();
  } finally {
    await Promise.all([a.stop(), b.stop(), c2.stop()]);
  }
  assertNothingLeft([a, b, c2]);
});

test('lazy remote fork moves only the pages the call touches: with one-page windows, statefill\'s second call reads the working set the parent recorded, not every dirty page', { skip }, async () => {
  const a = await launchNode({ name: 'parent', kind: 'netns' }, { variants: [V], memoryLimitMiB: 64 });
  const maxPages = Math.floor((64 * 2 ** 20) / 65536);
  // the child in this process, against the parent agent: its fault worker reads from the agent, not from us
  const child = new WasmRemoteFork(V, maxPages, { window: 1, maxWindow: 1 });
  try {
    const parent = await AgentClient.connect(a.endpoint);
    const d = await parent.snapshotRegister(V, 'statefill', Buffer.from('1'), 1);
    const link = await connectLink(a.endpoint);
    const fn = (await loadCatalog()).get('statefill');
    const img = prepareImage({ name: fn.name, path: fn.wasm!.path, abi: fn.wasm!.abi }, maxPages);
    const r = await child.forkFrom(img, { peer: a.endpoint, snapshot: d, copy: 'lazy', input: Buffer.from('1') }, regionSource(link));
    assert.equal(text(r.output), statefillAnswer(1, 2));
    const read = (r.bytesMoved - d.headerBytes) / 4096;
    assert.ok(read < d.pages, `read ${read} of ${d.pages} snapshot pages`);
    if (d.workingSetValidated) assert.equal(read, d.workingSetPages, `the recorded working set (${d.workingSetMethod})`);
    link.close();
    parent.close();
  } finally {
    child.teardown();
    await a.stop();
  }
  assertNothingLeft([a]);
});

test('lazy remote fork: the parent vanishing while the call faults gives the child a clear error, not a hang; the child goes on', { skip }, async () => {
  await withPair(async ({ a, parent, child }) => {
    const d = await parent.snapshotRegister(V, 'statefill', Buffer.from('8'), 1);
    throttle(a); // the pages of each fault take a while: the call is blocked in a fault when the parent dies
    const orphan = child.forkFrom(a.endpoint, d, 'lazy', Buffer.from('8'));
    await new Promise((r) => setTimeout(r, 700));
    a.child.kill('SIGKILL');
    await assert.rejects(orphan, /refused \(unavailable\): fork of statefill from .* \(region snap\/wasm-fork\/statefill\/\d+, copy lazy\) failed: lazy copy: .*(ended|closed)/);
    await child.ping();
    assert.equal((await child.hello()).node, 'child');
  });
});

test('remote fork over ssh: a child agent started over ssh (an sshd in a namespace of ours) forks a counter parent and answers 4, pulled and pushed', { skip }, async () => {
  const { sshdAvailable, startSshd } = await import('../harness/platform/nodes/sshd.js');
  const { repoRoot } = await import('../harness/paths.js');
  const can = sshdAvailable();
  assert.ok(can.ok, `the bootstrap installs openssh-server and the client: ${(can as { reason?: string }).reason}`);
  const fabric = acquireFabric();
  const host = fabric.addNode('sshfork');
  const server = await startSshd(host.ns, host.address);
  const nodes: LaunchedNode[] = [];
  try {
    const a = await launchNode({ name: 'parent', kind: 'netns' }, { variants: [V], memoryLimitMiB: 64 });
    nodes.push(a);
    const b = await launchNode(
      { name: 'far', kind: 'ssh', host: host.address, port: server.port, user: 'root', identity: server.identity, knownHosts: server.knownHosts, projectDir: repoRoot, nodePath: process.execPath },
      { variants: [V], memoryLimitMiB: 64 },
    );
    nodes.push(b);
    const parent = await AgentClient.connect(a.endpoint);
    const child = await AgentClient.connect(b.endpoint);
    const d = await parent.snapshotRegister(V, 'counter', new Uint8Array(0), 3);
    for (const copy of ['eager', 'dirty'] as const) assert.equal(text((await child.forkFrom(a.endpoint, d, copy, new Uint8Array(0))).output), '4\n', `copy ${copy} over ssh`);
    // pushed: the parent finds the far child's link by the name it gave in its hello
    const forked = child.forkFrom(a.endpoint, d, 'dirty', new Uint8Array(0), { tag: 9 });
    assert.deepEqual(await parent.pushTo('far', d, 'dirty', 9), { pieces: 2, bytes: d.totalBytes });
    assert.equal(text((await forked).output), '4\n', 'pushed over ssh');
    parent.close();
    child.close();
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    await server.stop();
    host.remove();
    releaseFabric(fabric);
  }
  assert.ok(!pidAlive(server.pid));
  assertNothingLeft([]);
});

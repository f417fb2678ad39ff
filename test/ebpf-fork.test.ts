// eBPF instance fork, with real programs in the kernel: the maps of a warm counter program,
// snapshotted and written into a freshly loaded copy, make the copy answer the parent's next count.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { BpfObject, bpfCapability } from '../harness/bpf/libbpf.js';
import { restoreMaps, snapshotMaps } from '../harness/bpf/map-snapshot.js';
import { loadCatalog, type Catalog } from '../harness/functions/catalog.js';
import { InvokeError } from '../harness/platform/variant.js';
import ebpfPlugin, { type EbpfVariant } from '../harness/variants/ebpf.js';

const capability = bpfCapability();
const skip = capability.ok ? false : `eBPF unavailable: ${capability.reason}`;
const T = { timeoutMs: 10_000 };
const empty = new Uint8Array(0);
const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

/** this process's open BPF programs and maps (anon inodes in /proc/self/fd) */
function bpfFds(): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const l = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (/bpf-(prog|map)/.test(l)) out.push(l);
    } catch {}
  }
  return out.sort();
}

let catalog: Catalog;
let v: EbpfVariant;
let fdsBefore: string[];
before(async () => {
  catalog = await loadCatalog();
  v = ebpfPlugin.create({ workDir: os.tmpdir(), memoryLimitMiB: 64 }) as EbpfVariant;
});
after(() => v?.teardown());
beforeEach(() => {
  fdsBefore = bpfFds();
});
afterEach(async () => {
  await v.teardown();
  assert.deepEqual(bpfFds(), fdsBefore, 'no program or map of the test left open');
});

describe('eBPF fork: map state restored into a freshly loaded program', { skip }, () => {
  test('counter: a parent after 3 warm calls; each fork answers 4, a cold load 1, the parent 4 next', async () => {
    const counter = catalog.get('counter');
    for (let i = 1; i <= 3; i++) assert.equal(text((await v.invoke(counter, 'warm', empty, T)).output), `${i}\n`);
    const snap = v.snapshot(counter);
    assert.deepEqual(snap.maps.map((m) => m.name), ['fxh_calls']);
    assert.equal(snap.maps[0]!.entries.length, 1);
    assert.equal(snap.maps[0]!.entries[0]!.value.readBigUInt64LE(0), 3n);
    const f1 = await v.forkInvoke(counter, snap, empty);
    const f2 = await v.forkInvoke(counter, snap, empty);
    assert.deepEqual([text(f1.output), text(f2.output)], ['4\n', '4\n'], 'every fork starts from the snapshot');
    assert.ok(f1.loadNs > 0 && f1.restoreNs > 0);
    assert.equal(text((await v.invoke(counter, 'cold', empty, T)).output), '1\n', 'without the snapshot a fresh load starts at 1');
    assert.equal(text((await v.invoke(counter, 'warm', empty, T)).output), '4\n', 'the parent was not touched by its forks');
  });

  test('a snapshot of another object does not fit, naming the maps', async () => {
    const counter = catalog.get('counter');
    const histogram = catalog.get('histogram');
    await v.invoke(histogram, 'warm', Buffer.from('abc'), T);
    const snap = v.snapshot(histogram);
    await assert.rejects(v.forkInvoke(counter, snap, empty), (e: Error) => e instanceof InvokeError && /maps .*fxh_hist.* missing/.test(e.message) && /fxh_calls not in the snapshot/.test(e.message));
  });

  test('a map whose shape differs is refused; no snapshot without a warm instance', async () => {
    const counter = catalog.get('counter');
    assert.throws(() => v.snapshot(counter), /no warm instance/);
    await v.invoke(counter, 'warm', empty, T);
    const snap = v.snapshot(counter);
    snap.maps[0]!.valueBytes = 4;
    await assert.rejects(v.forkInvoke(counter, snap, empty), /map fxh_calls is .*value 4 B.* in the snapshot but .*value 8 B/);
  });

  test('snapshotMaps/restoreMaps on raw objects: entries written back byte for byte', () => {
    const file = `${process.cwd()}/bpf/build/counter.bpf.o`;
    const a = BpfObject.open(file);
    const b = BpfObject.open(file);
    try {
      a.load();
      b.load();
      const value = Buffer.alloc(8);
      value.writeBigUInt64LE(0x1122334455n);
      a.map('fxh_calls').update(Buffer.alloc(4), value);
      restoreMaps(b, snapshotMaps(a, 'counter.bpf.o'));
      assert.equal(b.map('fxh_calls').lookup(Buffer.alloc(4))!.readBigUInt64LE(0), 0x1122334455n);
    } finally {
      a.close();
      b.close();
    }
  });
});

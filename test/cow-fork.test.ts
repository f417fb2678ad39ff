// Copy-on-write local fork (cow-image.ts) in real V8 and the real kernel: the snapshot's image really is
// mapped (a memfd mapping over the child's memory in /proc/self/maps), children sharing one image do
// not see each other's writes, the memfd is closed, and wrong targets and other modules are refused.
// That a cow child answers as its parent would is in wasm-fork.test.ts, with the other copy modes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { before, describe, test } from 'node:test';
import { loadCatalog, type Catalog } from '../harness/functions/catalog.js';
import { run } from '../harness/variants/wasm/engine.js';
import { CowImage } from '../harness/variants/wasm/cow-image.js';
import { InstancePool } from '../harness/variants/wasm/instance-pool.js';
import { freshInstance, instantiateParent, prepareImage, takeSnapshot, type ForkImage } from '../harness/variants/wasm/snapshot.js';
import { SnapshotError, type Snapshot } from '../harness/variants/wasm/snapshot-format.js';

const MAX_PAGES = 1024;
const empty = new Uint8Array(0);
const text = (b: Uint8Array) => Buffer.from(b).toString('latin1');
let catalog: Catalog;
before(async () => {
  catalog = await loadCatalog();
});

function counterAfter(calls: number): { img: ForkImage; snap: Snapshot } {
  const fn = catalog.get('counter');
  const img = prepareImage({ name: fn.name, path: fn.wasm!.path, abi: fn.wasm!.abi }, MAX_PAGES);
  const parent = instantiateParent(img);
  for (let i = 0; i < calls; i++) run(img.code, parent, empty, MAX_PAGES);
  return { img, snap: takeSnapshot(img, parent, calls) };
}

const fresh = (img: ForkImage, snap: Snapshot) => {
  const pool = new InstancePool(img, snap, 1, false);
  pool.fill();
  return pool.take()!;
};

/** this process's descriptors open on a snapshot memfd */
const memfds = () => fs.readdirSync('/proc/self/fd').filter((fd) => {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith('/memfd:fxh-snapshot');
  } catch {
    return false;
  }
}).length;

describe('copy-on-write local fork', () => {
  test('the child\'s memory is the snapshot memfd, mapped where V8 put the memory, at its full size', () => {
    const { img, snap } = counterAfter(3);
    const cow = CowImage.create(img, snap);
    try {
      const before = fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('memfd:fxh-snapshot-counter')).length;
      const child = cow.forkInto(img, fresh(img, snap));
      const maps = fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('memfd:fxh-snapshot-counter'));
      assert.equal(maps.length, before + 1, maps.join('\n'));
      const [lo, hi] = maps[maps.length - 1]!.split(' ')[0]!.split('-').map((h) => BigInt(`0x${h}`)) as [bigint, bigint];
      assert.equal(Number(hi - lo), snap.memoryBytes);
      assert.match(maps[maps.length - 1]!, / rw-p /, 'private (copy-on-write), readable and writable');
      assert.equal(text(run(img.code, child, empty, MAX_PAGES)), '4\n');
    } finally {
      cow.close();
    }
  });

  test('children of one image do not see each other\'s writes, and the image keeps the snapshot', () => {
    const { img, snap } = counterAfter(3);
    const cow = CowImage.create(img, snap);
    try {
      const a = cow.forkInto(img, fresh(img, snap));
      const b = cow.forkInto(img, fresh(img, snap));
      assert.deepEqual([1, 2, 3].map(() => text(run(img.code, a, empty, MAX_PAGES))), ['4\n', '5\n', '6\n']);
      assert.equal(text(run(img.code, b, empty, MAX_PAGES)), '4\n', 'b is untouched by a');
      const c = cow.forkInto(img, fresh(img, snap));
      assert.equal(text(run(img.code, c, empty, MAX_PAGES)), '4\n', 'a child made after both wrote starts from the snapshot');
    } finally {
      cow.close();
    }
  });

  test('close() closes the memfd; a closed image refuses to fork', () => {
    const { img, snap } = counterAfter(2);
    const was = memfds();
    const cow = CowImage.create(img, snap);
    assert.equal(memfds(), was + 1);
    cow.close();
    cow.close();
    assert.equal(memfds(), was);
    assert.throws(() => cow.forkInto(img, fresh(img, snap)), (e: Error) => e instanceof SnapshotError && /closed/.test(e.message));
  });

  test('a target whose memory is not the snapshot\'s size is refused before anything is mapped', () => {
    const { img, snap } = counterAfter(2);
    const cow = CowImage.create(img, snap);
    try {
      const big = freshInstance(img, [], snap.memoryBytes + 65536);
      assert.throws(() => cow.forkInto(img, big), (e: Error) => e instanceof SnapshotError && /target memory \d+ bytes, snapshot \d+/.test(e.message));
      assert.equal(text(run(img.code, big, empty, MAX_PAGES)), '1\n', 'the refused instance is still a fresh one');
    } finally {
      cow.close();
    }
  });

  test('a snapshot of another module is refused: the module hash differs', () => {
    const { snap } = counterAfter(2);
    const fn = catalog.get('statefill');
    const other = prepareImage({ name: fn.name, path: fn.wasm!.path, abi: fn.wasm!.abi }, MAX_PAGES);
    const was = memfds();
    assert.throws(() => CowImage.create(other, snap), /the module hash differs/);
    assert.equal(memfds(), was, 'no memfd left open');
  });
});

// The working set recorded by the kernel (bpf/wstrace.bpf.c + DAMON, harness/bpf/damon-access.ts):
// reads count, not only writes; no kdamond, lock or program is left behind, also when the call throws;
// where DAMON is in use by someone else the recording refuses and the working set falls back to writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { DAMON_ADMIN, LOCK_FILE, damonAccessUnavailable, recordAccesses } from '../harness/bpf/damon-access.js';
import { loadCatalog } from '../harness/functions/catalog.js';
import { run } from '../harness/variants/wasm/engine.js';
import { instantiateParent, prepareImage, takeSnapshot } from '../harness/variants/wasm/snapshot.js';
import { recordWorkingSet } from '../harness/variants/wasm/working-set.js';

const why = damonAccessUnavailable();
const skip = why ? `DAMON recording cannot run here: ${why}` : false;
const kdamonds = () => fs.readFileSync(`${DAMON_ADMIN}/nr_kdamonds`, 'utf8').trim();
const clean = () => {
  assert.equal(kdamonds(), '0', 'no kdamond left');
  assert.ok(!fs.existsSync(LOCK_FILE), 'no lock left');
};

test('the pages a call reads and writes, and only those', { skip }, async () => {
  const mem = new WebAssembly.Memory({ initial: 4 });
  const u8 = new Uint8Array(mem.buffer);
  u8.fill(3);
  let sum = 0;
  const r = await recordAccesses(mem, () => {
    for (let k = 20; k < 30; k++) sum += u8[k * 4096 + 17]!; // reads: no fault, no write
    u8[41 * 4096 + 5] = 1;
  });
  assert.equal(sum, 30);
  assert.deepEqual(r.pages, [20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 41]);
  assert.equal(r.touchedBefore, 0, 'no page was marked idle before DAMON started');
  assert.ok(r.reports >= 64, `one report per page after the call (${r.reports})`);
  const none = await recordAccesses(mem, () => {});
  assert.deepEqual(none.pages, [], 'a call that touches nothing');
  clean();
});

test('a call that throws: the error comes out, and nothing is left', { skip }, async () => {
  const mem = new WebAssembly.Memory({ initial: 1 });
  await assert.rejects(recordAccesses(mem, () => {
    throw new Error('the function failed');
  }), /the function failed/);
  clean();
});

test('a recording SIGKILLed mid-way (its lock names a dead pid, its kdamond still there): the next one removes both, says so, and records', { skip }, async () => {
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  fs.writeFileSync(LOCK_FILE, dead.stdout, { flag: 'wx' });
  fs.writeFileSync(`${DAMON_ADMIN}/nr_kdamonds`, '1');
  const said: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => (said.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    const mem = new WebAssembly.Memory({ initial: 1 });
    const u8 = new Uint8Array(mem.buffer);
    const r = await recordAccesses(mem, () => void (u8[3 * 4096] = 1));
    assert.deepEqual(r.pages, [3]);
  } finally {
    process.stderr.write = write;
    fs.writeFileSync(`${DAMON_ADMIN}/nr_kdamonds`, '0');
    fs.rmSync(LOCK_FILE, { force: true });
  }
  assert.ok(said.some((l) => l.includes(`removed the lock and kdamond of pid ${dead.stdout}, which died while recording`)), said.join(''));
  clean();
});

test('DAMON in use by someone else: refused with the reason; the working set falls back to writes and says why', { skip }, async () => {
  fs.writeFileSync(`${DAMON_ADMIN}/nr_kdamonds`, '1'); // someone else's kdamond (not started)
  try {
    assert.match(damonAccessUnavailable() ?? '', /DAMON is in use here \(nr_kdamonds=1\)/);
    await assert.rejects(recordAccesses(new WebAssembly.Memory({ initial: 1 }), () => {}), /DAMON is in use here/);
    const fn = (await loadCatalog()).get('counter');
    const img = prepareImage({ name: fn.name, path: fn.wasm!.path, abi: fn.wasm!.abi }, 64);
    const live = instantiateParent(img);
    run(img.code, live, new Uint8Array(0), 64);
    const ws = await recordWorkingSet(img, takeSnapshot(img, live, 1), new Uint8Array(0), 64);
    assert.match(ws.method, /^writes \(no damon: DAMON is in use here/);
    assert.equal(kdamonds(), '1', 'the other kdamond is not ours to remove');
  } finally {
    fs.writeFileSync(`${DAMON_ADMIN}/nr_kdamonds`, '0');
  }
  assert.ok(!fs.existsSync(LOCK_FILE));
});

test('statefill\'s working set by DAMON holds pages it only reads, and a fork holding only them answers alike', { skip }, async () => {
  const fn = (await loadCatalog()).get('statefill');
  const maxPages = 64;
  const input = Buffer.from('1');
  const img = prepareImage({ name: fn.name, path: fn.wasm!.path, abi: fn.wasm!.abi }, maxPages);
  const live = instantiateParent(img);
  run(img.code, live, input, maxPages);
  const s = takeSnapshot(img, live, 1);
  const ws = await recordWorkingSet(img, s, input, maxPages);
  assert.match(ws.method, /^damon \(\d+ reports, a \d+ ms pass\)$/);
  assert.equal(ws.validated, true);
  // statefill's second call reads its whole 1 MiB state and writes little of it: a set of writes alone would be far smaller
  assert.ok(ws.pages.length >= 256, `${ws.pages.length} of ${s.pages.length} dirty pages`);
  assert.ok(ws.watchedCallNs! > 0 && ws.plainCallNs! > 0 && ws.recordNs > ws.watchedCallNs!);
  clean();
});

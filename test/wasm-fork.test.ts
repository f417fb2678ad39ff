// WASM snapshot and local fork, in real V8: the module rewrite that exposes globals and tables, state
// carrying over into a forked child in every copy mode (with and without the prefaulted pool), the
// variant's semantics (directly and through the gateway), and every refused snapshot.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadCatalog, type Catalog } from '../harness/functions/catalog.js';
import type { FunctionEntry } from '../harness/functions/types.js';
import { statefillAnswer } from '../harness/functions/workloads/statefill.js';
import { expectedDigest, sha256Hex } from '../harness/functions/verify.js';
import { ProtocolClient } from '../harness/platform/client.js';
import { Gateway } from '../harness/platform/gateway.js';
import { InvokeError } from '../harness/platform/variant.js';
import { WasmForkVariant } from '../harness/variants/wasm-fork.js';
import { run, type WasmCode } from '../harness/variants/wasm/engine.js';
import { exportState, mutableGlobals } from '../harness/variants/wasm/module-globals.js';
import { InstancePool } from '../harness/variants/wasm/instance-pool.js';
import { CowImage } from '../harness/variants/wasm/cow-image.js';
import { COPY_MODES, fork, instantiateParent, prepareImage, restoreInto, takeSnapshot, type ForkImage } from '../harness/variants/wasm/snapshot.js';
import { SNAPSHOT_VERSION, SnapshotError, decodeHeader, decodeSnapshot, encodeSnapshot, type Snapshot } from '../harness/variants/wasm/snapshot-format.js';

const MAX_PAGES = 1024; // 64 MiB
const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');
const empty = new Uint8Array(0);

let catalog: Catalog;
const code = (fn: FunctionEntry): WasmCode => ({ name: fn.name, path: fn.wasm!.path, abi: fn.wasm!.abi });
before(async () => {
  catalog = await loadCatalog();
});

/** A parent of `name` that served `calls` calls of `input`, and its snapshot (encoded and decoded again). */
function parentAndSnapshot(name: string, input: Uint8Array, calls: number) {
  const c = code(catalog.get(name));
  const img = prepareImage(c, MAX_PAGES);
  const parent = instantiateParent(img);
  const answers = Array.from({ length: calls }, () => text(run(c, parent, input, MAX_PAGES)));
  const bytes = encodeSnapshot(takeSnapshot(img, parent, calls));
  return { c, img, parent, answers, bytes, snap: decodeSnapshot(bytes) };
}

describe('module rewrite: mutable globals and tables exported', () => {
  test('counter: __stack_pointer (global 0, not exported by wasm-ld) and table 0 become exports; the module still runs', () => {
    const fn = catalog.get('counter');
    const img = prepareImage(code(fn), MAX_PAGES);
    assert.deepEqual(img.globals, [{ index: 0, type: 'i32', exportName: 'fxh.global.0' }]);
    assert.deepEqual(img.tables, ['fxh.table.0']);
    const names = WebAssembly.Module.exports(img.module).map((e) => `${e.kind}:${e.name}`);
    for (const want of ['memory:memory', 'function:fx_invoke', 'function:_initialize', 'global:fxh.global.0', 'table:fxh.table.0']) assert.ok(names.includes(want), `${want} in ${names.join(', ')}`);
    assert.equal(text(run(img.code, instantiateParent(img), empty, MAX_PAGES)), '1\n');
  });

  // (module (global (mut i32) (i32.const 7)) (global i64 (i64.const 1)) (global $g (mut f64) (f64.const 2.5)) (export "g" (global 2)))
  const tiny = (withExport: boolean): Uint8Array => {
    const globals = [0x06, 0x17, 0x03, 0x7f, 0x01, 0x41, 0x07, 0x0b, 0x7e, 0x00, 0x42, 0x01, 0x0b, 0x7c, 0x01, 0x44, 0, 0, 0, 0, 0, 0, 0x04, 0x40, 0x0b];
    const exp = withExport ? [0x07, 0x05, 0x01, 0x01, 0x67, 0x03, 0x02] : [];
    return Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...globals, ...exp]);
  };

  test('a module with no export section gets one; immutable globals stay internal; values readable', () => {
    assert.ok(WebAssembly.validate(tiny(false)));
    assert.deepEqual(mutableGlobals(tiny(false)), [{ index: 0, type: 'i32' }, { index: 2, type: 'f64' }]);
    const r = exportState(tiny(false));
    assert.deepEqual(r.globals.map((g) => g.exportName), ['fxh.global.0', 'fxh.global.2']);
    const inst = new WebAssembly.Instance(new WebAssembly.Module(r.bytes));
    assert.equal((inst.exports['fxh.global.0'] as WebAssembly.Global).value, 7);
    assert.equal((inst.exports['fxh.global.2'] as WebAssembly.Global).value, 2.5);
    assert.equal(inst.exports['fxh.global.1'], undefined);
  });

  test('an already exported mutable global keeps its name and is not exported twice', () => {
    const r = exportState(tiny(true));
    assert.deepEqual(r.globals.map((g) => g.exportName), ['fxh.global.0', 'g']);
    assert.deepEqual(WebAssembly.Module.exports(new WebAssembly.Module(r.bytes)).map((e) => e.name).sort(), ['fxh.global.0', 'g']);
  });
});

describe('state carries over into a forked child', () => {
  const ways = [...COPY_MODES.flatMap((copy) => [false, true].map((pooled) => ({ copy, pooled }))), { copy: 'cow' as const, pooled: true }];
  for (const { copy, pooled } of ways) {
    const how = copy === 'cow' ? 'copy-on-write onto a fresh instance' : `${copy}${pooled ? ' onto a prefaulted instance' : ''}`;
    const child = (img: ForkImage, snap: Snapshot) => {
      if (copy === 'cow') {
        const pool = new InstancePool(img, snap, 1, false);
        pool.fill();
        const cow = CowImage.create(img, snap);
        try {
          return cow.forkInto(img, pool.take()!);
        } finally {
          cow.close(); // the child's mapping keeps the image
        }
      }
      if (!pooled) return fork(img, snap, copy);
      const pool = new InstancePool(img, snap, 1);
      pool.fill();
      return restoreInto(img, snap, copy, pool.take()!);
    };

    test(`counter, ${how}: a parent after 3 calls; its child answers 4, as the parent's next call does`, () => {
      const { c, img, snap, parent, answers } = parentAndSnapshot('counter', empty, 3);
      assert.deepEqual(answers, ['1\n', '2\n', '3\n']);
      assert.ok(snap.pages.length > 0, 'the state differs from the initial image');
      const kids = [child(img, snap), child(img, snap)];
      assert.deepEqual(kids.map((k) => text(run(c, k, empty, MAX_PAGES))), ['4\n', '4\n'], 'each child starts from the snapshot');
      assert.equal(text(run(c, kids[0]!, empty, MAX_PAGES)), '5\n', 'a child keeps its own state');
      assert.equal(text(run(c, parent, empty, MAX_PAGES)), '4\n', 'the parent is untouched by its children');
    });

    test(`statefill 3 MiB, ${how}: the child answers calls=2 with the parent's checksum of its whole state`, () => {
      const input = Buffer.from('3');
      const { c, img, snap, answers } = parentAndSnapshot('statefill', input, 1);
      assert.equal(answers[0], statefillAnswer(3, 1));
      assert.ok(snap.pages.length * snap.pageSize >= 3 * 2 ** 20, `${snap.pages.length} dirty pages hold the 3 MiB`);
      assert.equal(text(run(c, child(img, snap), input, MAX_PAGES)), statefillAnswer(3, 2));
    });
  }

  test('a snapshot right after initialisation (0 calls): the child answers as a fresh instance', () => {
    const { c, img, snap } = parentAndSnapshot('counter', empty, 0);
    assert.equal(text(run(c, fork(img, snap, 'dirty'), empty, MAX_PAGES)), '1\n');
  });

  test('the globals are restored: a child gets the snapshot\'s value of __stack_pointer, not the module\'s', () => {
    const { img, snap } = parentAndSnapshot('counter', empty, 1);
    const moved: Snapshot = { ...snap, globals: [{ ...snap.globals[0]!, value: 4096 }] };
    const k = fork(img, moved, 'dirty');
    assert.equal((k.instance.exports['fxh.global.0'] as WebAssembly.Global).value, 4096);
    assert.notEqual(snap.globals[0]!.value, 4096);
  });

  test('dirty-only restore really relies on the fresh instance: the pages it skips equal the initial image', () => {
    const { img, snap, parent } = parentAndSnapshot('statefill', Buffer.from('1'), 1);
    const k = fork(img, snap, 'dirty');
    assert.ok(Buffer.from(k.memory.buffer).equals(Buffer.from(parent.memory.buffer)), 'child memory equals the parent memory byte for byte');
  });
});

describe('bad snapshots are refused', () => {
  let good: Uint8Array;
  let img: ForkImage;
  let H: number;
  before(() => {
    const p = parentAndSnapshot('counter', empty, 2);
    good = p.bytes;
    img = p.img;
    H = decodeHeader(good).headerBytes;
  });
  const refused = (bytes: Uint8Array, re: RegExp) => assert.throws(() => decodeSnapshot(bytes), (e: Error) => e instanceof SnapshotError && re.test(e.message), `refused with ${re}`);

  test('truncated inside the header: the header checksum fails', () => {
    refused(good.subarray(0, 100), /truncated.*header checksum \(sha256\) fails/);
    refused(good.subarray(0, 40), /truncated.*header checksum \(sha256\) fails/);
  });
  test('truncated inside the pages: the first missing page\'s checksum fails', () => {
    refused(good.subarray(0, H + 4096 + 10), /truncated.*checksum \(fxh64\) of page 1 /);
  });
  test('a flipped byte in a page: that page\'s checksum, with its memory offset', () => {
    const bad = Uint8Array.from(good);
    bad[H + 4096 + 7]! ^= 1;
    refused(bad, /corrupted: checksum \(fxh64\) of page 1 \(memory offset 0x[0-9a-f]+\) mismatch/);
  });
  test('a flipped byte in the header (a global\'s value): the header checksum', () => {
    const bad = Uint8Array.from(good);
    bad[80]! ^= 1;
    refused(bad, /corrupted: header checksum \(sha256\) mismatch/);
  });
  test('a newer format version names both versions', () => {
    const bad = Buffer.from(good);
    bad.writeUInt32LE(SNAPSHOT_VERSION + 1, 8);
    refused(bad, new RegExp(`format version ${SNAPSHOT_VERSION + 1} is newer than this reader's version ${SNAPSHOT_VERSION}`));
  });
  test('an older format version (version 1: sha256 page checksums) names both versions', () => {
    const bad = Buffer.from(good);
    bad.writeUInt32LE(1, 8);
    refused(bad, new RegExp(`format version 1 is older than this reader's version ${SNAPSHOT_VERSION} \\(its page checksums are not fxh64\\)`));
  });
  test('not a snapshot at all', () => refused(Buffer.from('{"hello": "world"} and more bytes than that'), /not a snapshot/));
  test('a snapshot of another module: the module hash differs', () => {
    const other = prepareImage(code(catalog.get('statefill')), MAX_PAGES);
    assert.throws(() => fork(other, decodeSnapshot(good), 'dirty'), /snapshot of module "counter".*cannot restore into "statefill".*module hash differs/);
    assert.doesNotThrow(() => fork(img, decodeSnapshot(good), 'dirty'));
  });
  test('the same function with another memory cap is another module', () => {
    const c = code(catalog.get('counter'));
    assert.throws(() => fork(prepareImage(c, MAX_PAGES / 2), decodeSnapshot(good), 'dirty'), /module hash differs/);
  });
});

/** descriptors of this process open on a snapshot memfd (copy=cow) */
const snapshotMemfds = () =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('/memfd:fxh-snapshot');
    } catch {
      return false;
    }
  }).length;

describe('variant wasm-fork, mode local-fork', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fxh-fork-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const T = { timeoutMs: 10_000 };

  for (const copy of [...COPY_MODES, 'cow'] as const) {
    for (const pool of [0, 2]) {
      test(`copy=${copy} pool=${pool}: every call forks from a parent that served one call; stateless functions answer their oracle`, async () => {
        const memfdsBefore = snapshotMemfds();
        const v = new WasmForkVariant({ workDir: dir, memoryLimitMiB: 64 }, { copy, pool, parentCalls: 1 });
        try {
          const counter = catalog.get('counter');
          for (let i = 0; i < 4; i++) assert.equal(text((await v.invoke(counter, 'local-fork', empty, T)).output), '2\n');
          assert.ok(v.lastForkNs > 0);
          for (const name of ['json', 'sha256', 'noop-as']) {
            const fn = catalog.get(name);
            const input = fn.workload.input(1, 'small');
            for (let i = 0; i < 2; i++) assert.equal(sha256Hex((await v.invoke(fn, 'local-fork', input, T)).output), expectedDigest(fn, input), `${name} call ${i}`);
          }
          const sf = catalog.get('statefill');
          const input = sf.workload.input(1, 'small');
          assert.equal(sha256Hex((await v.invoke(sf, 'local-fork', input, T)).output), expectedDigest(sf, input), 'statefill: its oracle is the second call');
          if (pool) {
            await new Promise((r) => setImmediate(r));
            assert.ok(v.poolFillNs > 0, 'the pool was filled');
          }
          // one parent per function; copy=cow keeps its image in a memfd
          assert.equal(snapshotMemfds() - memfdsBefore, copy === 'cow' ? 5 : 0);
        } finally {
          await v.teardown();
        }
        assert.equal(snapshotMemfds(), memfdsBefore, 'teardown closed every snapshot memfd');
      });
    }
  }

  test('a new input makes a new parent: statefill 2 MiB after 1 MiB', async () => {
    const v = new WasmForkVariant({ workDir: dir, memoryLimitMiB: 64 });
    try {
      const sf = catalog.get('statefill');
      const was = snapshotMemfds();
      assert.equal(text((await v.invoke(sf, 'local-fork', Buffer.from('1'), T)).output), statefillAnswer(1, 2));
      assert.equal(text((await v.invoke(sf, 'local-fork', Buffer.from('2'), T)).output), statefillAnswer(2, 2));
      assert.equal(snapshotMemfds() - was, 1, 'the old parent\'s image was closed');
    } finally {
      await v.teardown();
    }
  });

  test('refuses other modes and command modules, naming why; a failing function is a function-error', async () => {
    const v = new WasmForkVariant({ workDir: dir, memoryLimitMiB: 64 });
    try {
      assert.match(v.supports(catalog.get('noop'), 'warm') ?? '', /only mode local-fork/);
      await assert.rejects(v.invoke(catalog.get('noop'), 'cold', empty, T), (e: Error) => e instanceof InvokeError && e.kind === 'unavailable');
      await assert.rejects(v.invoke(catalog.get('trap'), 'local-fork', empty, T), (e: Error) => e instanceof InvokeError && e.kind === 'function-error');
      await assert.rejects(v.invoke(catalog.get('statefill'), 'local-fork', Buffer.from('0'), T), (e: Error) => e instanceof InvokeError && e.kind === 'function-error');
    } finally {
      await v.teardown();
    }
  });

  test('through the gateway: mode local-fork crosses the wire protocol', async () => {
    const gw = await Gateway.start({ binary: 'tcp:127.0.0.1:0', memoryLimitMiB: 64 });
    const client = await ProtocolClient.connect(gw.binaryEndpoint!);
    try {
      for (let i = 0; i < 3; i++) {
        const r = await client.invoke({ variant: 'wasm-fork', fn: 'counter', mode: 'local-fork', input: empty, timeoutMs: T.timeoutMs });
        assert.equal(r.status, 'ok', text(r.output));
        assert.equal(text(r.output), '2\n');
      }
    } finally {
      client.close();
      await gw.close();
    }
  });
});

// The `native` variant against the real fixture binaries (wasm-fixtures/build/native/*): real processes, no mocks.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadCatalog, type Catalog } from '../harness/functions/catalog.js';
import type { FunctionEntry } from '../harness/functions/types.js';
import { descendantPids, pidAlive, readProcessMemory } from '../harness/platform/proc-memory.js';
import nativePlugin, { NativeVariant } from '../harness/variants/native.js';
import { ServeClient } from '../harness/variants/serve-client.js';
import { correct, rejectsWith } from './helpers.js';

let catalog: Catalog;
let workDir: string;
let v: NativeVariant;
const fn = (name: string): FunctionEntry => catalog.get(name);
const TIMEOUT = { timeoutMs: 10_000 };


before(async () => {
  catalog = await loadCatalog();
  workDir = mkdtempSync(join(tmpdir(), 'fxh-native-'));
  v = nativePlugin.create({ workDir, memoryLimitMiB: 64 }) as NativeVariant;
});

after(async () => {
  await v.teardown();
  rmSync(workDir, { recursive: true, force: true });
});

describe('proc-memory', () => {
  test('reads RSS and PSS of this process', () => {
    const m = readProcessMemory(process.pid);
    assert.equal(m.source, 'smaps_rollup');
    assert.ok(m.rssBytes > 10 * 1024 * 1024, `rss ${m.rssBytes}`);
    assert.ok(m.pssBytes > 0 && m.pssBytes <= m.rssBytes);
  });
  test('a missing process throws', () => {
    assert.throws(() => readProcessMemory(2 ** 22 + 7), /does not exist/);
  });
  test('descendantPids finds a grandchild', async () => {
    const c = await ServeClient.start('/bin/sh', ['-c', 'sleep 5 & sleep 5; :'], {}, {});
    await new Promise((r) => setTimeout(r, 100));
    const d = descendantPids(process.pid);
    assert.ok(d.includes(c.pid!));
    const grandchildren = descendantPids(c.pid!);
    assert.ok(grandchildren.length >= 2);
    for (const g of grandchildren) process.kill(g, 'SIGKILL');
    await c.kill();
  });
});

describe('native variant', () => {
  test('plugin metadata and check', async () => {
    assert.equal(nativePlugin.name, 'native');
    assert.deepEqual([...v.modes], ['cold', 'warm']);
    assert.deepEqual(await v.check(), { ok: true });
  });

  test('supports() explains a missing native build', () => {
    assert.match(v.supports(fn('noop-as'), 'cold') ?? '', /no native build/);
    assert.match(v.supports(fn('noop'), 'cold-compile') ?? '', /no mode cold-compile/);
    assert.equal(v.supports(fn('noop'), 'warm'), null);
  });

  for (const mode of ['cold', 'warm'] as const) {
    test(`${mode}: outputs are correct (noop, sha256, json, matmul)`, async () => {
      for (const name of ['noop', 'sha256', 'json', 'matmul']) {
        for (const seed of [1, 2]) {
          const input = fn(name).workload.input(seed, 'small');
          const r = await v.invoke(fn(name), mode, input, TIMEOUT);
          correct(fn(name), input, r.output);
          assert.ok(r.elapsedNs > 0);
        }
      }
    });
  }

  test('cold: a crash is a function-error naming the signal', async () => {
    await rejectsWith(v.invoke(fn('crash'), 'cold', new Uint8Array(), TIMEOUT), 'function-error', /SIGSEGV/);
    await rejectsWith(v.invoke(fn('trap'), 'cold', new Uint8Array(), TIMEOUT), 'function-error', /SIGILL/);
  });

  test('cold: a loop times out within timeout + 1 s and leaves no process', async () => {
    const before = new Set(descendantPids(process.pid));
    const t0 = Date.now();
    await rejectsWith(v.invoke(fn('loop'), 'cold', new Uint8Array(), { timeoutMs: 300 }), 'timeout');
    const dt = Date.now() - t0;
    assert.ok(dt >= 300 && dt < 1300, `took ${dt} ms`);
    assert.deepEqual(descendantPids(process.pid).filter((p) => !before.has(p)), []);
  });

  test('cold: memhog stops at FX_MEM_LIMIT_MB with exit status 3', async () => {
    await rejectsWith(v.invoke(fn('memhog'), 'cold', new Uint8Array(), TIMEOUT), 'function-error', /exit status 3/);
  });

  test('warm: the same process serves repeated calls', async () => {
    const a = await v.warmClient(fn('noop'));
    for (let i = 0; i < 5; i++) await v.invoke(fn('noop'), 'warm', new Uint8Array(), TIMEOUT);
    const b = await v.warmClient(fn('noop'));
    assert.equal(a.pid, b.pid);
    assert.ok(b.answered >= 5);
  });

  test('warm: concurrent calls are serialised on one process', async () => {
    const f = fn('sha256');
    const inputs = [1, 2, 3, 4, 5, 6].map((s) => f.workload.input(s, 'small'));
    const rs = await Promise.all(inputs.map((i) => v.invoke(f, 'warm', i, TIMEOUT)));
    rs.forEach((r, k) => correct(f, inputs[k]!, r.output));
  });

  test('warm: a crash is a function-error and the process is replaced', async () => {
    const e = await rejectsWith(v.invoke(fn('crash'), 'warm', new Uint8Array(), TIMEOUT), 'function-error', /SIGSEGV/);
    assert.match(e.message, /during a request/);
    const c1 = await v.warmClient(fn('crash'));
    assert.ok(c1.alive);
    await rejectsWith(v.invoke(fn('crash'), 'warm', new Uint8Array(), TIMEOUT), 'function-error', /SIGSEGV/);
    assert.ok(!pidAlive(c1.pid!) || !c1.alive);
  });

  test('warm: a loop times out, its process is killed, the next call gets a new one', async () => {
    const c1 = await v.warmClient(fn('loop'));
    const t0 = Date.now();
    await rejectsWith(v.invoke(fn('loop'), 'warm', new Uint8Array(), { timeoutMs: 300 }), 'timeout');
    assert.ok(Date.now() - t0 < 1300);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(!c1.alive);
    const c2 = await v.warmClient(fn('loop'));
    assert.notEqual(c1.pid, c2.pid);
    await c2.kill();
  });

  test('startIdle: --serve processes started through the placement, answering correctly, closed afterwards', async () => {
    const before = new Set(descendantPids(process.pid));
    const wrapped: string[] = [];
    const placement = { wrap: (command: string, args: readonly string[]) => (wrapped.push(command), { command, args: [...args] }) };
    const idle = await v.startIdle(fn('sha256'), { placement, timeoutMs: 5000 });
    const input = fn('sha256').workload.input(1, 'small');
    for (let i = 0; i < 3; i++) correct(fn('sha256'), input, await idle.add(input));
    assert.equal(wrapped.length, 3);
    assert.equal(await idle.alive(), 3);
    for (const p of descendantPids(process.pid).filter((p) => !before.has(p))) assert.ok(readProcessMemory(p).pssBytes > 0);
    await idle.close();
    await idle.close();
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(descendantPids(process.pid).filter((p) => !before.has(p)), []);
  });

  test('teardown kills every warm process and is safe twice', async () => {
    const c = await v.warmClient(fn('noop'));
    await v.teardown();
    await v.teardown();
    assert.ok(!c.alive);
    assert.ok(!pidAlive(c.pid!));
  });
});

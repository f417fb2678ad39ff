// Does `warm` really reuse one instance, and does every `cold` call really start a fresh one? The
// test-only `counter` fixture prints how many calls its instance has served, so a fresh instance
// answers 1 and a reused one 1, 2, 3, ... Checked for every variant plug-in that has a cold and a
// warm mode (a variant that cannot run here, or cannot run `counter`, is skipped with the reason),
// directly and through the gateway.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadCatalog, type Catalog } from '../harness/functions/catalog.js';
import type { FunctionEntry } from '../harness/functions/types.js';
import { ProtocolClient } from '../harness/platform/client.js';
import { Gateway } from '../harness/platform/gateway.js';
import { loadVariantPlugins } from '../harness/platform/registry.js';
import type { Mode, Variant } from '../harness/platform/variant.js';

const CALLS = 4;
const T = { timeoutMs: 20_000 };
const empty = new Uint8Array(0);
const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');
const counts = (n: number, from = 1): string[] => Array.from({ length: n }, (_, i) => `${from + i}\n`);

let catalog: Catalog;
let counter: FunctionEntry;
const plugins = await loadVariantPlugins();

before(async () => {
  catalog = await loadCatalog();
  counter = catalog.get('counter');
});

test('the counter fixture exists for wasm and native, and its oracle is a fresh instance\'s answer', () => {
  assert.ok(counter.wasm && counter.native, 'counter is built for wasm and native');
  assert.equal(counter.testOnly, true);
  assert.ok(!catalog.defaults().some((f) => f.name === 'counter'), 'not in the default suite');
  assert.equal(text(counter.workload.expected(empty)), '1\n');
});

for (const [name, plugin] of plugins) {
  describe(`variant ${name}`, () => {
    let dir: string;
    let v: Variant;
    let skip: string | false = false;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'fxh-reuse-'));
      v = plugin.create({ workDir: dir, memoryLimitMiB: 64 });
      const cap = await v.check();
      if (!cap.ok) skip = `${name} unavailable here: ${cap.reason}`;
      else if (!v.modes.includes('warm') || !v.modes.some((m) => m !== 'warm')) skip = `${name} has no cold and warm modes (${v.modes.join(', ')})`;
      else skip = v.supports(counter, 'warm') ?? false;
    });
    after(async () => {
      await v.teardown();
      rmSync(dir, { recursive: true, force: true });
    });
    const call = async (mode: Mode): Promise<string> => text((await v.invoke(counter, mode, empty, T)).output);

    test('cold: every call is a fresh instance (answers 1)', async (t) => {
      if (skip) return t.skip(skip);
      for (const mode of v.modes.filter((m) => m !== 'warm')) {
        const got: string[] = [];
        for (let i = 0; i < CALLS; i++) got.push(await call(mode));
        assert.deepEqual(got, counts(CALLS).map(() => '1\n'), `${mode}`);
      }
    });

    test('warm: one instance serves every call (answers 1, 2, 3, ...); cold calls do not touch it', async (t) => {
      if (skip) return t.skip(skip);
      const got: string[] = [];
      for (let i = 0; i < CALLS; i++) got.push(await call('warm'));
      assert.deepEqual(got, counts(CALLS));
      for (const mode of v.modes.filter((m) => m !== 'warm')) assert.equal(await call(mode), '1\n', `${mode} between warm calls`);
      assert.equal(await call('warm'), `${CALLS + 1}\n`, 'the warm instance kept its state');
    });

    test('teardown ends the warm instance: the next warm call starts a new one', async (t) => {
      if (skip) return t.skip(skip);
      await call('warm');
      await v.teardown();
      assert.deepEqual([await call('warm'), await call('warm')], counts(2));
    });
  });
}

describe('through the gateway (its executor processes)', () => {
  let gw: Gateway;
  let client: ProtocolClient;
  before(async () => {
    gw = await Gateway.start({ binary: 'tcp:127.0.0.1:0', memoryLimitMiB: 64 });
    client = await ProtocolClient.connect(gw.binaryEndpoint!);
  });
  after(async () => {
    client.close();
    await gw.close();
  });

  for (const variant of ['wasm', 'native', 'container', 'ebpf']) {
    test(`${variant}: cold answers 1 every time, warm 1, 2, 3, ...`, async (t) => {
      const call = async (mode: Mode): Promise<string> => {
        const r = await client.invoke({ variant, fn: 'counter', mode, input: empty, timeoutMs: T.timeoutMs });
        if (r.status === 'unavailable') return `unavailable: ${text(r.output)}`;
        assert.equal(r.status, 'ok', text(r.output));
        return text(r.output);
      };
      const first = await call('cold');
      if (first.startsWith('unavailable')) return t.skip(`${variant} ${first}`);
      const cold = [first];
      for (let i = 1; i < CALLS; i++) cold.push(await call('cold'));
      assert.deepEqual(cold, counts(CALLS).map(() => '1\n'));
      const warm: string[] = [];
      for (let i = 0; i < CALLS; i++) warm.push(await call('warm'));
      assert.deepEqual(warm, counts(CALLS));
    });
  }
});

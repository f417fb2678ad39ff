// The docker and containerd variants against real daemons (started by the harness when none runs):
// verified outputs, a crashing and a hanging container killed and removed, the daemon stopped at the end.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadCatalog, type Catalog } from '../harness/functions/catalog.js';
import type { Variant } from '../harness/platform/variant.js';
import containerdPlugin from '../harness/variants/containerd.js';
import dockerPlugin from '../harness/variants/docker.js';
import { daemonDir } from '../harness/variants/oci/daemon.js';
import { correct, rejectsWith } from './helpers.js';

let catalog: Catalog;
before(async () => {
  catalog = await loadCatalog();
});

function containersOf(kind: string, socket: string): string[] {
  const out =
    kind === 'docker'
      ? execFileSync('docker', ['-H', `unix://${socket}`, 'ps', '-a', '--format', '{{.Names}}'], { encoding: 'utf8' })
      : execFileSync('ctr', ['-a', socket, '-n', 'fxh', 'containers', 'ls', '-q'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.trim());
}

for (const [kind, plugin, daemon] of [
  ['docker', dockerPlugin, 'dockerd'],
  ['containerd', containerdPlugin, 'containerd'],
] as const) {
  describe(`${kind} variant`, { skip: (process.getuid?.() ?? 1) === 0 ? false : 'needs root' }, () => {
    let workDir: string;
    let v: Variant;
    let socket: string;
    let ownDaemon = false;
    before(async () => {
      workDir = mkdtempSync(join(tmpdir(), `fxh-${kind}t-`));
      v = plugin.create({ workDir, memoryLimitMiB: 64 });
      const cap = await v.check();
      assert.deepEqual(cap, { ok: true }, `the ${kind} daemon did not come up: ${JSON.stringify(cap)}`);
      ownDaemon = existsSync(daemonDir(daemon));
      socket = ownDaemon ? join(daemonDir(daemon), daemon === 'dockerd' ? 'docker.sock' : 'containerd.sock') : daemon === 'dockerd' ? '/var/run/docker.sock' : '/run/containerd/containerd.sock';
    });
    after(async () => {
      await v.teardown();
      rmSync(workDir, { recursive: true, force: true });
    });

    test('cold and warm outputs are correct', async () => {
      for (const name of ['noop', 'sha256']) {
        const fn = catalog.get(name);
        const input = fn.workload.input(3, 'small');
        for (const mode of ['cold', 'warm', 'warm'] as const) correct(fn, input, (await v.invoke(fn, mode, input, { timeoutMs: 20_000 })).output);
      }
      // warm containers stay; no cold one does
      assert.equal(containersOf(kind, socket).length, 2);
    });

    test('a crashing function is a function-error and its container is removed', async () => {
      const before = containersOf(kind, socket).length;
      await rejectsWith(v.invoke(catalog.get('crash'), 'cold', Buffer.from('x'), { timeoutMs: 20_000 }), 'function-error', /SIG|status/);
      assert.equal(containersOf(kind, socket).length, before);
    });

    test('a hanging function times out, and its container is killed and removed', async () => {
      const before = containersOf(kind, socket).length;
      const t0 = Date.now();
      await rejectsWith(v.invoke(catalog.get('loop'), 'cold', Buffer.from('x'), { timeoutMs: 1500 }), 'timeout');
      assert.ok(Date.now() - t0 < 15_000);
      assert.equal(containersOf(kind, socket).length, before);
    });

    test('teardown removes every container, and stops a daemon the harness started', async () => {
      await v.teardown();
      if (ownDaemon) assert.ok(!existsSync(daemonDir(daemon)), `${daemonDir(daemon)} left behind`);
      else assert.deepEqual(containersOf(kind, socket).filter((n) => n.startsWith('fxh-')), []);
    });
  });
}

// The docker and containerd variants against real daemons (started by the harness when none runs):
// verified outputs, a crashing and a hanging container killed and removed, the daemon stopped at the end.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadCatalog, type Catalog } from '../harness/functions/catalog.js';
import { idleSequence, tryBudget } from '../harness/experiments/density-idle.js';
import { InvokeError, type Variant } from '../harness/platform/variant.js';
import containerdPlugin from '../harness/variants/containerd.js';
import dockerPlugin from '../harness/variants/docker.js';
import { daemonDir } from '../harness/variants/oci/daemon.js';
import { correct, rejectsWith } from './helpers.js';

const MiB = 2 ** 20;
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

/** containers of this process (fxh-<pid>-<n>): another harness process may share the daemon */
function ownOf(kind: string, socket: string): string[] {
  return containersOf(kind, socket).filter((n) => n.startsWith(`fxh-${process.pid}-`));
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

    const ours = (): string[] => ownOf(kind, socket);

    test('density: each idle container counted with its shim (and ctr client), the daemon once and apart; all removed', async () => {
      const fn = catalog.get('noop');
      const opts = { timeoutMs: 20_000, input: fn.workload.input(1, 'small') };
      const before = ours().length;
      const seq = await idleSequence(v, fn, 3, opts);
      assert.ok(seq.selfReported, 'a daemon side reports its own memory');
      assert.match(seq.selfReported.method, /containerd-shim/);
      assert.match(seq.selfReported.sharedLabel, kind === 'docker' ? /dockerd/ : /containerd/);
      for (const s of seq.steps) {
        // a Go daemon holds megabytes; the containers add to it
        assert.ok(s.sharedBytes! > 4 * MiB && s.cgroupBytes > s.sharedBytes!, JSON.stringify(s));
        assert.ok(s.pssBytes! > s.sharedBytes! && s.pssBytes! <= s.rssBytes!, JSON.stringify(s));
      }
      // per instance: its /fx --serve, its shim, and (containerd) its `ctr run` client; the daemon's processes once
      const each = kind === 'containerd' ? 3 : 2;
      const procs = seq.steps.map((s) => s.processes);
      assert.deepEqual(procs.slice(1).map((p, i) => p - procs[i]!), [each, each], `processes ${procs}`);
      const [first, , last] = seq.steps;
      assert.ok(last!.cgroupBytes / 3 < first!.cgroupBytes, 'the daemon is paid once, so the cost per instance falls');
      assert.equal(ours().length, before, 'idle containers removed');

      const none = await tryBudget(v, fn, 4 * MiB, 3, opts);
      assert.deepEqual({ started: none.started, alive: none.alive, outcome: none.outcome }, { started: 0, alive: 0, outcome: 'over-budget' });
      assert.match(none.reason, /before instance #1 \(the shared part alone\).*past the 4\.0 MiB budget/);
      const fit = await tryBudget(v, fn, 4096 * MiB, 2, opts);
      assert.deepEqual({ started: fit.started, alive: fit.alive, outcome: fit.outcome, checked: fit.checkedNotLimited }, { started: 2, alive: 2, outcome: 'reached', checked: true });
      assert.equal(ours().length, before, 'trial containers removed');
    });

    test('density: a looping function times out within the step bound, and its idle container is removed', async () => {
      const loop = catalog.get('loop');
      const before = ours().length;
      const t0 = Date.now();
      await assert.rejects(idleSequence(v, loop, 2, { timeoutMs: 1500, input: loop.workload.input(1, 'small') }), (e: unknown) => {
        assert.ok(e instanceof InvokeError && e.kind === 'timeout', String(e));
        return true;
      });
      assert.ok(Date.now() - t0 < 15_000, `took ${Date.now() - t0} ms`);
      assert.equal(ours().length, before);
    });

    test('teardown removes every container, and stops a daemon the harness started', async () => {
      await v.teardown();
      if (ownDaemon) assert.ok(!existsSync(daemonDir(daemon)), `${daemonDir(daemon)} left behind`);
      else assert.deepEqual(containersOf(kind, socket).filter((n) => n.startsWith('fxh-')), []);
    });
  });
}

test('a daemon that fails to start: the variant is unavailable, with the daemon\'s own error, and nothing is left', { skip: (process.getuid?.() ?? 1) === 0 ? false : 'needs root' }, async () => {
  const { acquireDaemon } = await import('../harness/variants/oci/daemon.js');
  const { writeFileSync, chmodSync, readdirSync } = await import('node:fs');
  const bin = mkdtempSync(join(tmpdir(), 'fxh-fakebin-'));
  const where = mkdtempSync(join(tmpdir(), 'fxh-fakeroot-'));
  const path0 = process.env.PATH;
  try {
    // a stand-in for the daemon's failure path only: it says why it cannot start, as dockerd does
    writeFileSync(join(bin, 'dockerd'), '#!/bin/sh\necho "failed to start daemon: fake: no overlay2 here" >&2\nexit 1\n');
    chmodSync(join(bin, 'dockerd'), 0o755);
    process.env.PATH = `${bin}:${path0}`;
    const a = await acquireDaemon('dockerd', where);
    assert.equal(a.ok, false);
    assert.match((a as { reason: string }).reason, /dockerd exited \(1\).*failed to start daemon: fake: no overlay2 here/s);
    assert.deepEqual(readdirSync(where), [], 'the daemon folder is removed');
  } finally {
    process.env.PATH = path0;
    rmSync(bin, { recursive: true, force: true });
    rmSync(where, { recursive: true, force: true });
  }
});

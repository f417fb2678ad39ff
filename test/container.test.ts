// The `container` variant with REAL runc containers (no mocks) around the real fixture binaries.
// Needs root and runc; otherwise the runc-dependent tests are skipped with the reason.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadCatalog, type Catalog } from '../harness/functions/catalog.js';
import type { FunctionEntry } from '../harness/functions/types.js';
import { MemoryCgroup } from '../harness/platform/memory-cgroup.js';
import { pidAlive } from '../harness/platform/proc-memory.js';
import containerPlugin, { ContainerVariant } from '../harness/variants/container.js';
import { ensureBundle } from '../harness/variants/oci/bundle.js';
import { OciRuntime, ourCgroupDirs } from '../harness/variants/oci/runtime.js';
import { correct, rejectsWith } from './helpers.js';

let catalog: Catalog;
let workDir: string;
let v: ContainerVariant;
let rt: OciRuntime;
let skip: string | false = false;
let snapshotBefore: string;
const fn = (name: string): FunctionEntry => catalog.get(name);
const T = { timeoutMs: 10_000 };
const empty = new Uint8Array();

/** fxh ids of OTHER live harness processes (tests running in parallel) are not ours to compare */
function relevant(idOrPath: string): boolean {
  const m = /fxh-(\d+)-\d+$/.exec(idOrPath);
  return !m || Number(m[1]) === process.pid || !pidAlive(Number(m[1]));
}

/** every container runc knows + every cgroup dir named like ours */
async function snapshot(): Promise<string> {
  const ids = (await rt.list()).filter((c) => relevant(c.id)).map((c) => `${c.id}:${c.status}`).sort();
  return JSON.stringify({ ids, cgroups: ourCgroupDirs().filter(relevant) }, null, 1);
}

async function noneOf(id: string): Promise<void> {
  assert.equal((await rt.list()).filter((c) => c.id === id).length, 0, `${id} still in runc list`);
  assert.deepEqual(ourCgroupDirs(id), [], `cgroup dirs of ${id} left`);
  assert.ok(!existsSync(join(rt.stateRoot, id)), `state dir of ${id} left`);
}


before(async () => {
  catalog = await loadCatalog();
  workDir = mkdtempSync(join(tmpdir(), 'fxh-container-'));
  v = containerPlugin.create({ workDir, memoryLimitMiB: 64 }) as ContainerVariant;
  rt = v.runtime;
  const cap = await v.check();
  if (!cap.ok) skip = cap.reason;
  else snapshotBefore = await snapshot();
});

after(async () => {
  await v.teardown();
  if (!skip) assert.equal(await snapshot(), snapshotBefore, 'runc list / cgroup dirs differ from the start of the test');
  rmSync(workDir, { recursive: true, force: true });
});

describe('capability check (no containers needed)', () => {
  test('plugin metadata names the runtime', () => {
    assert.equal(containerPlugin.name, 'container');
    assert.match(containerPlugin.summary, /runc/);
    assert.deepEqual([...v.modes], ['cold', 'warm']);
    assert.equal(v.runtimeName, process.env.FXH_OCI_RUNTIME ?? 'runc');
  });

  test('not root: says so', async () => {
    const nr = new ContainerVariant({ workDir, memoryLimitMiB: 64, runtime: { getuid: () => 1000 } });
    assert.deepEqual(await nr.check(), { ok: false, reason: 'needs root: runc creates namespaces and cgroups' });
    await rejectsWith(nr.invoke(fn('noop'), 'cold', empty, T), 'unavailable', /needs root/);
  });

  test('runc missing: says how to install it', async () => {
    const nm = new ContainerVariant({ workDir, memoryLimitMiB: 64, runtime: { binary: '/nonexistent/runc', getuid: () => 0 } });
    const c = await nm.check();
    assert.equal(c.ok, false);
    assert.match((c as { reason: string }).reason, /\/nonexistent\/runc not found.*apt-get install runc/);
    await nm.teardown();
  });

  test('supports() explains a missing native build and unknown modes', () => {
    assert.match(v.supports(fn('noop-as'), 'cold') ?? '', /no native build/);
    assert.match(v.supports(fn('noop'), 'cold-compile') ?? '', /no mode/);
    assert.equal(v.supports(fn('noop'), 'warm'), null);
  });

  test('bundle: rebuilt only when the binary changes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fxh-bundle-'));
    try {
      const bin = join(dir, 'bin');
      copyFileSync(fn('noop').native!, bin);
      const spec = { name: 'b1', binary: bin, memoryLimitMiB: 32 };
      const a = ensureBundle(dir, spec);
      assert.equal(a.built, true);
      assert.equal(ensureBundle(dir, spec).built, false);
      const cfg = JSON.parse(readFileSync(join(a.coldDir, 'config.json'), 'utf8'));
      assert.deepEqual(cfg.process.args, ['/fx']);
      assert.equal(cfg.process.terminal, false);
      assert.equal(cfg.root.readonly, true);
      assert.equal(cfg.linux.resources.memory.limit, 32 * 1024 * 1024);
      assert.ok(cfg.process.env.includes('FX_MEM_LIMIT_MB=32'));
      assert.ok(cfg.linux.namespaces.some((n: { type: string }) => n.type === 'network'));
      const serve = JSON.parse(readFileSync(join(a.serveDir, 'config.json'), 'utf8'));
      assert.deepEqual(serve.process.args, ['/fx', '--serve']);
      assert.equal(serve.root.path, a.rootfs);
      writeFileSync(bin, readFileSync(fn('sha256').native!)); // the binary changed
      assert.equal(ensureBundle(dir, spec).built, true);
      assert.equal(ensureBundle(dir, { ...spec, memoryLimitMiB: 48 }).built, true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('runc containers', () => {
  test('probe with the built-in tiny ELF also passes', async (t) => {
    if (skip) return t.skip(skip);
    assert.deepEqual(await new OciRuntime({ probeBinary: 'builtin' }).check(), { ok: true });
  });

  for (const mode of ['cold', 'warm'] as const) {
    test(`${mode}: outputs are correct (noop, sha256, json, matmul)`, async (t) => {
      if (skip) return t.skip(skip);
      for (const name of ['noop', 'sha256', 'json', 'matmul']) {
        for (const seed of [1, 2]) {
          const input = fn(name).workload.input(seed, 'small');
          const r = await v.invoke(fn(name), mode, input, T);
          correct(fn(name), input, r.output);
          assert.ok(r.elapsedNs > 0);
        }
      }
    });
  }

  /** the container ids `runc run` is given while `f` runs (the runtime's own argument builder, observed) */
  async function runIds<R>(f: () => Promise<R>): Promise<{ result: R; ids: string[] }> {
    const orig = rt.runArgs;
    const ids: string[] = [];
    rt.runArgs = function (bundle: string, id: string): string[] {
      const args = orig.call(this, bundle, id);
      ids.push(args[args.length - 1]!);
      return args;
    };
    try {
      return { result: await f(), ids };
    } finally {
      rt.runArgs = orig;
    }
  }

  test('cold: every call is a new container (a new id, a fresh process answering counter = 1), removed after', async (t) => {
    if (skip) return t.skip(skip);
    await v.teardown();
    const { result, ids } = await runIds(async () => {
      const out: string[] = [];
      for (let i = 0; i < 5; i++) out.push(Buffer.from((await v.invoke(fn('counter'), 'cold', empty, T)).output).toString());
      return out;
    });
    assert.deepEqual(result, ['1\n', '1\n', '1\n', '1\n', '1\n']);
    assert.equal(ids.length, 5, `runc run calls: ${ids}`);
    assert.equal(new Set(ids).size, 5, `ids not distinct: ${ids}`);
    for (const id of ids) {
      assert.match(id, new RegExp(`^fxh-${process.pid}-\\d+$`));
      await noneOf(id);
    }
  });

  test('cold: parallel invocations get their own containers', async (t) => {
    if (skip) return t.skip(skip);
    await v.teardown(); // no warm containers: every fxh container of this pid would be a cold leftover
    const f = fn('sha256');
    const inputs = [3, 4, 5, 6].map((s) => f.workload.input(s, 'small'));
    const { result: rs, ids } = await runIds(() => Promise.all(inputs.map((i) => v.invoke(f, 'cold', i, T))));
    rs.forEach((r, k) => correct(f, inputs[k]!, r.output));
    assert.equal(new Set(ids).size, inputs.length, `one distinct container per call: ${ids}`);
    for (const id of ids) await noneOf(id);
    assert.deepEqual(await rt.listOurs(process.pid), []);
  });

  test('warm: calls go to one container (no new runc run after the first), counter counts up', async (t) => {
    if (skip) return t.skip(skip);
    await v.teardown();
    const { result, ids } = await runIds(async () => {
      const out: string[] = [];
      for (let i = 0; i < 4; i++) out.push(Buffer.from((await v.invoke(fn('counter'), 'warm', empty, T)).output).toString());
      return out;
    });
    assert.deepEqual(result, ['1\n', '2\n', '3\n', '4\n']);
    assert.equal(ids.length, 1, `runc run calls: ${ids}`);
    assert.equal((await v.warmContainer(fn('counter'))).id, ids[0]);
    assert.equal((await rt.state(ids[0]!))?.status, 'running');
  });

  test('cold: a crash is a function-error naming the signal; nothing left', async (t) => {
    if (skip) return t.skip(skip);
    await v.teardown();
    await rejectsWith(v.invoke(fn('crash'), 'cold', empty, T), 'function-error', /SIGSEGV/);
    await rejectsWith(v.invoke(fn('trap'), 'cold', empty, T), 'function-error', /SIGILL/);
    assert.deepEqual(await rt.listOurs(process.pid), []);
    assert.deepEqual(ourCgroupDirs().filter((d) => d.includes(`fxh-${process.pid}-`)), []);
  });

  test('cold: memhog stops at the memory limit (exit 3)', async (t) => {
    if (skip) return t.skip(skip);
    await rejectsWith(v.invoke(fn('memhog'), 'cold', empty, T), 'function-error', /exit status 3/);
  });

  test('cold: a loop times out within timeout + 1 s; container, cgroups and state are gone', async (t) => {
    if (skip) return t.skip(skip);
    const t0 = Date.now();
    const e = await rejectsWith(v.invoke(fn('loop'), 'cold', empty, { timeoutMs: 500 }), 'timeout');
    const dt = Date.now() - t0;
    assert.ok(dt >= 500 && dt < 1500, `took ${dt} ms`);
    const id = /(fxh-\d+-\d+)/.exec(e.message)?.[1];
    assert.ok(id, e.message);
    await noneOf(id);
    assert.deepEqual(await rt.listOurs(process.pid), []);
  });

  test('warm: the same container serves repeated calls (same pid)', async (t) => {
    if (skip) return t.skip(skip);
    await v.invoke(fn('noop'), 'warm', empty, T);
    const a = await v.warmContainer(fn('noop'));
    const pidA = await v.containerPid(a);
    await v.invoke(fn('noop'), 'warm', empty, T);
    const b = await v.warmContainer(fn('noop'));
    assert.equal(b.id, a.id);
    assert.equal(await v.containerPid(b), pidA);
    assert.ok(pidA !== undefined && pidAlive(pidA));
  });

  test('warm: a crash is a function-error; the container is replaced on the next call', async (t) => {
    if (skip) return t.skip(skip);
    const a = await v.warmContainer(fn('crash'));
    const pidA = await v.containerPid(a);
    await rejectsWith(v.invoke(fn('crash'), 'warm', empty, T), 'function-error', /SIGSEGV/);
    const b = await v.warmContainer(fn('crash'));
    assert.notEqual(b.id, a.id);
    assert.notEqual(await v.containerPid(b), pidA);
    await noneOf(a.id);
    await rejectsWith(v.invoke(fn('crash'), 'warm', empty, T), 'function-error', /SIGSEGV/);
  });

  test('warm: a loop times out within timeout + 1 s; its container is removed and replaced', async (t) => {
    if (skip) return t.skip(skip);
    const a = await v.warmContainer(fn('loop'));
    const t0 = Date.now();
    await rejectsWith(v.invoke(fn('loop'), 'warm', empty, { timeoutMs: 500 }), 'timeout');
    assert.ok(Date.now() - t0 < 1500, `took ${Date.now() - t0} ms`);
    await new Promise((r) => setTimeout(r, 100));
    await noneOf(a.id);
    const b = await v.warmContainer(fn('loop'));
    assert.notEqual(b.id, a.id);
  });

  test('startIdle: runc run and its container are under the placement\'s memory cgroup; removed afterwards', async (t) => {
    if (skip) return t.skip(skip);
    await v.teardown();
    const cell = MemoryCgroup.create('density');
    try {
      const idle = await v.startIdle(fn('noop'), { placement: cell, timeoutMs: 10_000 });
      try {
        correct(fn('noop'), empty, await idle.add(empty));
        correct(fn('noop'), empty, await idle.add(empty));
        assert.equal(await idle.alive(), 2);
        const ours = await rt.listOurs(process.pid);
        assert.equal(ours.length, 2);
        const pids = cell.pids();
        for (const c of ours) {
          assert.ok(pids.includes(c.pid), `container init ${c.pid} in the cell (${pids.join(',')})`);
          const memLine = readFileSync(`/proc/${c.pid}/cgroup`, 'utf8').split('\n').find((l) => /:memory:/.test(l) || l.startsWith('0::'));
          assert.ok(memLine?.includes(`${basename(cell.dir)}/${c.id}`), memLine);
        }
        // runc run (the supervisor) + the container's /fx per instance
        assert.ok(pids.length >= 4, `processes in the cell: ${pids.length}`);
        assert.ok(cell.usageBytes() > 0);
      } finally {
        await idle.close();
      }
      assert.deepEqual(await rt.listOurs(process.pid), []);
      assert.deepEqual(cell.pids(), []);
    } finally {
      cell.remove();
    }
    assert.ok(!cell.exists);
    assert.deepEqual(ourCgroupDirs().filter((d) => d.includes(`fxh-${process.pid}-`)), []);
  });

  test('teardown removes every container and is safe twice', async (t) => {
    if (skip) return t.skip(skip);
    await v.invoke(fn('noop'), 'warm', empty, T);
    await v.invoke(fn('sha256'), 'warm', fn('sha256').workload.input(1, 'small'), T);
    assert.ok((await rt.listOurs(process.pid)).length >= 2);
    await v.teardown();
    await v.teardown();
    assert.deepEqual(await rt.listOurs(process.pid), []);
    assert.deepEqual(ourCgroupDirs().filter((d) => d.includes(`fxh-${process.pid}-`)), []);
    // still usable after teardown
    const r = await v.invoke(fn('noop'), 'cold', empty, T);
    correct(fn('noop'), empty, r.output);
  });

  test('leftovers of a dead harness pid are removed at startup and logged', async (t) => {
    if (skip) return t.skip(skip);
    const dead = spawnSync('/bin/true').pid!;
    assert.ok(!pidAlive(dead));
    const id = `fxh-${dead}-1`;
    const b = ensureBundle(workDir, { name: 'leftover', binary: fn('loop').native!, memoryLimitMiB: 16 });
    // `runc create` leaves a container in state "created" (runc init waiting), as after a harness crash
    await new Promise<void>((resolve, reject) => {
      const c = spawn(rt.command, ['create', '--bundle', b.coldDir, id], { stdio: 'ignore' });
      c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`runc create exit ${code}`))));
    });
    assert.equal((await rt.state(id))?.status, 'created');
    assert.ok(ourCgroupDirs(id).length > 0);
    const logs: string[] = [];
    const fresh = new OciRuntime({ log: (m) => logs.push(m) });
    assert.deepEqual(await fresh.check(), { ok: true }); // check() runs the startup cleanup
    await noneOf(id);
    assert.ok(logs.some((l) => l.includes(`removed leftover container ${id}`)), logs.join('\n'));
    // containers of live harness processes (this one) are not touched
    assert.deepEqual(await fresh.cleanupLeftovers(true), []);
  });
});

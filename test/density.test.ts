// Density: the cell cgroup, WASM instances held by an executor process, the fit really tried.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { loadCatalog } from '../harness/functions/catalog.js';
import { MemoryCgroup, memoryCgroupLayout, removeStaleMemoryCgroups } from '../harness/platform/memory-cgroup.js';
import { pidAlive } from '../harness/platform/proc-memory.js';
import { InvokeError } from '../harness/platform/variant.js';
import { fitModel, idleSequence, tryBudget } from '../harness/experiments/density-idle.js';
import { densityReport } from '../harness/experiments/density.js';
import wasmPlugin from '../harness/variants/wasm.js';
import nativePlugin from '../harness/variants/native.js';
import { summarize } from '../harness/results/summarize.js';
import type { RawRow } from '../harness/results/schema.js';
import { waitFor } from './helpers.js';

const MiB = 2 ** 20;
const layout = memoryCgroupLayout();
const skip = layout.ok ? false : layout.reason;
const catalog = await loadCatalog();
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'fxh-density-test-'));
const wasm = wasmPlugin.create({ workDir: scratch, memoryLimitMiB: 32 });
const native = nativePlugin.create({ workDir: scratch, memoryLimitMiB: 32 });
after(async () => {
  await wasm.teardown();
  await native.teardown();
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** our density cells anywhere under the parent the layout makes them in */
function ownCells(): string[] {
  if (!layout.ok) return [];
  return fs.readdirSync(layout.layout.parent).filter((n) => n.startsWith(`fxh-${process.pid}-density`));
}

test('fitModel: the line through N = 1 and N = k, and what fits', () => {
  // fixed 40 MiB, marginal 0.5 MiB
  const steps = [1, 2, 4].map((n) => ({ n, cgroupBytes: (40 + 0.5 * n) * MiB }));
  const m = fitModel(steps, 64 * MiB);
  assert.equal(m.marginalBytes, 0.5 * MiB);
  assert.equal(m.fixedBytes, 40 * MiB);
  assert.equal(m.predicted, 48);
  assert.equal(fitModel(steps, 32 * MiB).predicted, 0, 'a budget below the fixed cost fits nothing');
  assert.equal(fitModel([{ n: 1, cgroupBytes: 5 }, { n: 3, cgroupBytes: 5 }], MiB).predicted, undefined);
  assert.throws(() => fitModel(steps.slice(0, 1), MiB), /two steps/);
});

describe('memory cgroup', { skip }, () => {
  test('a wrapped process is inside from the start, its memory is charged, remove() kills it and removes the directory', async () => {
    const cg = MemoryCgroup.create('density', 64 * MiB);
    try {
      const w = cg.wrap(process.execPath, ['-e', 'globalThis.b = Buffer.alloc(8 << 20, 1); setInterval(() => {}, 1000); console.log("up")']);
      const child = spawn(w.command, w.args, { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise((r) => child.stdout!.once('data', r));
      assert.deepEqual(cg.pids(), [child.pid]);
      assert.ok(cg.usageBytes() > 8 * MiB, `usage ${cg.usageBytes()}`);
      assert.match(cg.usageFile(), layout.ok && layout.layout.kind === 'v1' ? /memory\.usage_in_bytes$/ : /memory\.current$/);
      assert.equal(cg.oomKills(), 0);
      cg.remove();
      assert.ok(!cg.exists);
      assert.ok(await waitFor(() => !pidAlive(child.pid!)));
    } finally {
      cg.remove();
    }
  });

  test('a crashed run\'s cell is found by its dead pid and removed', () => {
    if (!layout.ok) return;
    const dir = path.join(layout.layout.parent, 'fxh-999999999-density-7');
    fs.mkdirSync(dir);
    try {
      const lines = removeStaleMemoryCgroups('density', () => false);
      assert.ok(lines.some((l) => l.includes(dir) && /removed stale/.test(l)), lines.join('\n'));
      assert.ok(!fs.existsSync(dir));
    } finally {
      if (fs.existsSync(dir)) fs.rmdirSync(dir);
    }
  });
});

describe('WASM idle instances held by an executor process', { skip }, () => {
  const fn = catalog.get('noop');
  const opts = { timeoutMs: 10_000, input: fn.workload.input(1, 'small') };

  test('N = 1 … 4: real positive memory, one holder process, per-instance cost falls with N; the cell is removed', async () => {
    const seq = await idleSequence(wasm, fn, 4, opts);
    assert.equal(seq.steps.length, 4);
    assert.match(seq.method, /executor process/);
    for (const s of seq.steps) {
      assert.equal(s.processes, 1, 'the executor and nothing else');
      // a Node process: megabytes, not a marginal growth that may be ~0
      assert.ok(s.cgroupBytes > 4 * MiB, `cgroup ${s.cgroupBytes}`);
      assert.ok(s.pssBytes! > 4 * MiB && s.pssBytes! <= s.rssBytes!, JSON.stringify(s));
    }
    const first = seq.steps[0]!;
    const last = seq.steps[3]!;
    // the executor is paid once: (fixed + 4 marginal) / 4 < fixed + marginal
    assert.ok(last.cgroupBytes / 4 < first.cgroupBytes / 2, `per instance N=1 ${first.cgroupBytes}, N=4 ${last.cgroupBytes / 4}`);
    assert.ok(last.pssBytes! / 4 < first.pssBytes! / 2);
    assert.deepEqual(ownCells(), []);
  });

  test('a budget too small to hold even the executor: nothing starts, and it says why', async () => {
    const t = await tryBudget(wasm, fn, 8 * MiB, 5, opts);
    assert.equal(t.started, 0);
    assert.equal(t.alive, 0);
    assert.notEqual(t.outcome, 'reached');
    assert.match(t.reason, /before instance #1/);
    assert.ok(t.oomKills > 0 || t.failCount > 0, JSON.stringify(t));
    assert.deepEqual(ownCells(), []);
  });

  test('a budget that holds them: the count asked for is started and alive, and recorded', async () => {
    const t = await tryBudget(wasm, fn, 256 * MiB, 50, opts);
    assert.deepEqual({ started: t.started, alive: t.alive, outcome: t.outcome, oom: t.oomKills }, { started: 50, alive: 50, outcome: 'reached', oom: 0 });
    assert.equal(t.target, 50);
    assert.ok((t.peakBytes ?? 0) > 4 * MiB);
    assert.deepEqual(ownCells(), []);
  });

  test('a looping function: the step times out, the executor is killed, nothing is left', async () => {
    const loop = catalog.get('loop');
    const t0 = Date.now();
    await assert.rejects(idleSequence(wasm, loop, 2, { timeoutMs: 1000, input: loop.workload.input(1, 'small') }), (e: unknown) => {
      assert.ok(e instanceof InvokeError && e.kind === 'timeout', String(e));
      assert.match((e as Error).message, /killed/);
      return true;
    });
    assert.ok(Date.now() - t0 < 8000, `took ${Date.now() - t0} ms`);
    assert.deepEqual(ownCells(), []);
  });
});

describe('native idle instances', { skip }, () => {
  test('one --serve process per instance in the cell: no fixed cost to amortise, and a tried budget reached', async () => {
    const fn = catalog.get('noop');
    const opts = { timeoutMs: 10_000, input: fn.workload.input(1, 'small') };
    const seq = await idleSequence(native, fn, 3, opts);
    assert.deepEqual(seq.steps.map((s) => s.processes), [1, 2, 3]);
    for (const s of seq.steps) assert.ok(s.cgroupBytes > 0 && s.pssBytes! > 0 && s.pssBytes! <= s.rssBytes!, JSON.stringify(s));
    const t = await tryBudget(native, fn, 64 * MiB, 5, opts);
    assert.deepEqual({ started: t.started, alive: t.alive, outcome: t.outcome }, { started: 5, alive: 5, outcome: 'reached' });
    assert.deepEqual(ownCells(), []);
  });
});

test('densityReport: per-instance cost at N = 1 and N = k, predicted and tried, from summary rows', () => {
  const raw: RawRow[] = [];
  const row = (metric: string, params: string, value: number, unit = 'MiB') =>
    raw.push({ experiment: 'density', variant: 'wasm', function: 'noop', mode: 'warm', path: 'idle', metric, params, iteration: 0, value, unit });
  row('cgroup_per_instance', 'n=1', 14);
  row('cgroup_per_instance', 'n=4', 3.5);
  row('fit_predicted', 'budget=64 MiB', 600, 'instances');
  row('fit_tried', 'budget=64 MiB;outcome=oom-kill', 0, 'instances');
  const lines = densityReport(summarize(raw, [], []));
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /wasm\/noop: cgroup per instance N=1 14\.0 MiB, N=4 3\.50 MiB; fit in 64 MiB: predicted 600; tried 0 alive \(oom-kill\)/);
});

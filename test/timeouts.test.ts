// Nothing hangs a run: a looping function fails its cell with `timeout` on every path and the run
// goes on; Ctrl-C ends a run even while a function loops; and a direct sample times the call only,
// never the output check. Real WASM in V8, real native processes, real experiment entry points.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../harness/paths.js';
import { loadCatalog } from '../harness/functions/catalog.js';
import type { FunctionEntry } from '../harness/functions/types.js';
import { sha256Hex, verifyOutput } from '../harness/functions/verify.js';
import { RunContext } from '../harness/experiment/context.js';
import { parseCommonArgs } from '../harness/experiment/args.js';
import { measureLatency } from '../harness/experiment/latency.js';
import type { VariantSet } from '../harness/experiment/plan.js';
import { createRng } from '../harness/measure/random.js';
import type { RawRow } from '../harness/results/schema.js';
import type { RawWriter } from '../harness/results/raw-writer.js';
import { readSummaryCsv } from '../harness/results/summarize.js';
import type { Invocation, Variant } from '../harness/platform/variant.js';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'timeouts-test-'));
process.on('exit', () => fs.rmSync(scratch, { recursive: true, force: true }));

function experiment(script: string, args: string[]) {
  return spawnSync(process.execPath, [path.join(repoRoot, 'experiments', script), ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
}

const TIMEOUT_MS = 1500;

const MODES: Record<string, Record<string, string[]>> = {
  'cold-start.mjs': { wasm: ['cold-compile', 'cold', 'cold-process'], native: ['cold'] },
  'warm.mjs': { wasm: ['warm'], native: ['warm'] },
};

for (const [script, modesOf] of Object.entries(MODES)) {
  test(`${script}: a looping function fails with timeout on every path and mode; the other function is measured`, () => {
    const dir = path.join(scratch, script);
    const t0 = Date.now();
    const r = experiment(script, ['--quick', '--variants', 'wasm,native', '--functions', 'loop,noop', '--timeout-ms', String(TIMEOUT_MS), '--reps', '10', '--no-notebooks', '--out', dir]);
    assert.notEqual(r.signal, 'SIGTERM', `the run hung (killed after ${Date.now() - t0} ms)`);
    assert.equal(r.status, 1, r.stderr);
    const rows = readSummaryCsv(path.join(dir, 'summary.csv'));
    for (const [variant, modes] of Object.entries(modesOf)) {
      for (const mode of modes) {
        for (const p of ['direct', 'gateway']) {
          const loop = rows.filter((x) => x.variant === variant && x.function === 'loop' && x.mode === mode && x.path === p);
          assert.equal(loop.length, 1, `${variant}/loop/${mode}/${p}: ${JSON.stringify(loop)}`);
          assert.equal(loop[0]!.status, 'failed');
          assert.match(loop[0]!.note, /timeout/);
          const noop = rows.filter((x) => x.variant === variant && x.function === 'noop' && x.mode === mode && x.path === p);
          assert.equal(noop.length, 1, `${variant}/noop/${mode}/${p}`);
          assert.equal(noop[0]!.status, 'ok');
          assert.equal(noop[0]!.n, 10);
        }
      }
    }
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8')).state, 'incomplete');
  });
}

test('Ctrl-C while a WASM function loops on the direct path ends the run within 2 s, marked incomplete', async () => {
  const dir = path.join(scratch, 'sigint');
  const child = spawn(process.execPath, [path.join(repoRoot, 'experiments', 'cold-start.mjs'), '--variants', 'wasm', '--functions', 'loop', '--timeout-ms', '600000', '--no-notebooks', '--out', dir], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const deadline = Date.now() + 60_000;
  while (!/direct: start/.test(err) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.match(err, /direct: start/);
  await new Promise((r) => setTimeout(r, 1000)); // the worker is in the loop by now
  const t0 = Date.now();
  child.kill('SIGINT');
  const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000))]);
  const ms = Date.now() - t0;
  if (code === 'hung') child.kill('SIGKILL');
  assert.equal(code, 130, err);
  assert.ok(ms < 2000, `exit took ${ms} ms`);
  const status = JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8'));
  assert.equal(status.state, 'incomplete');
  assert.match(status.reason, /SIGINT/);
});

/** The variant answers at once; what costs time is checking its (large) output. */
function instantVariant(output: Uint8Array): Variant {
  return {
    name: 'instant', modes: ['warm'], enforcesTimeouts: true,
    check: async () => ({ ok: true }),
    supports: () => null,
    invoke: async (): Promise<Invocation> => ({ output, elapsedNs: 0 }),
    teardown: async () => {},
  };
}

test('a direct sample times the call, not the output check (which takes milliseconds here)', async () => {
  const output = new Uint8Array(4 * 2 ** 20).fill(7);
  const digest = sha256Hex(output);
  const fn: FunctionEntry = {
    name: 'big', summary: 'answers 4 MiB', origin: 'user', testOnly: true,
    workload: { name: 'big', summary: '', input: () => new Uint8Array(1), expected: () => output, expectedDigest: () => digest },
  };
  const t = process.hrtime.bigint();
  verifyOutput(fn, new Uint8Array(1), output);
  const checkNs = Number(process.hrtime.bigint() - t);
  assert.ok(checkNs > 1e6, `one check takes ${checkNs} ns: the test needs it to take over 1 ms`);

  const variant = instantVariant(output);
  const variants: VariantSet = {
    active: new Map([['instant', variant]]), unavailable: [], experiments: new Map(), workDir: scratch,
    options: new Map([['instant', { workDir: scratch, memoryLimitMiB: 64 }]]),
  };
  const rows: RawRow[] = [];
  const writer: RawWriter = { path: '', rowsWritten: 0, append: (r) => void rows.push(...r), close: () => {} };
  const args = parseCommonArgs(['--reps', '20', '--warmup', '2', '--client-cpus', 'none'], {});
  const catalog = await loadCatalog();
  const ctx = new RunContext(args, scratch, catalog, [fn], variants, writer, createRng(1));
  ctx.experiment = 'warm';
  await measureLatency(ctx, { modes: ['warm'], metric: 'latency', reps: 20, warmup: 2, paths: ['direct'] });
  assert.deepEqual(ctx.failures, []);
  assert.equal(rows.length, 20);
  const worst = Math.max(...rows.map((r) => r.value * 1000));
  assert.ok(worst < checkNs / 2, `a sample took ${worst} ns; one output check takes ${checkNs} ns`);
});

test('a worker stopped while its cold-process child loops leaves no child behind', async () => {
  const { measureDirectCell, CellInterrupted } = await import('../harness/experiment/direct-cell.js');
  const { default: wasmPlugin } = await import('../harness/variants/wasm.js');
  const { processesNaming } = await import('../harness/platform/proc-sweep.js');
  const workDir = fs.mkdtempSync(path.join(scratch, 'cp-'));
  const options = { workDir, memoryLimitMiB: 64 };
  const variant = wasmPlugin.create(options);
  const loop = (await loadCatalog()).get('loop');
  const t0 = Date.now();
  // the run is interrupted 1.5 s in, long before the call's own 60 s timeout would kill the child
  await assert.rejects(
    measureDirectCell({ variant, options, fn: loop, mode: 'cold-process', input: new Uint8Array(0), warmup: 0, reps: 1, timeoutMs: 60_000, stopped: () => Date.now() - t0 > 1500 }),
    (e: Error) => e instanceof CellInterrupted,
  );
  const deadline = Date.now() + 3000;
  while (processesNaming(workDir).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(processesNaming(workDir), [], 'the cold-process child outlived its worker');
  await variant.teardown();
});

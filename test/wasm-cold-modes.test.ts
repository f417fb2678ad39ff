// What each WASM cold mode includes, shown rather than assumed: cold-compile compiles every time
// (V8's native-module cache would hand back the earlier compilation for the same bytes), cold
// reuses one compilation, and cold-process starts a new process per call that is killed on timeout.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { loadCatalog } from '../harness/functions/catalog.js';
import { repoRoot } from '../harness/paths.js';
import wasmPlugin from '../harness/variants/wasm.js';
import { processesNaming } from '../harness/platform/proc-sweep.js';
import { correct, rejectsWith, waitFor } from './helpers.js';

const catalog = await loadCatalog();
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-cold-modes-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

/**
 * Runs the wasm variant in a child Node with --trace-wasm-compilation-times (V8 prints a line per
 * function it compiles) for these calls, and returns how many such lines the child printed. V8
 * prints through C stdio, buffered apart from JavaScript's writes, so calls are told apart by
 * running different sequences, not by markers between them.
 */
function compileLines(calls: string[]): number {
  const script = `
    const { loadCatalog } = await import(${JSON.stringify(path.join(repoRoot, 'build/harness/functions/catalog.js'))});
    const { default: plugin } = await import(${JSON.stringify(path.join(repoRoot, 'build/harness/variants/wasm.js'))});
    const fn = (await loadCatalog()).get('sha256');
    const v = plugin.create({ workDir: ${JSON.stringify(scratch)}, memoryLimitMiB: 64 });
    const input = fn.workload.input(1, 'small');
    for (const mode of ${JSON.stringify(calls)}) await v.invoke(fn, mode, input, { timeoutMs: 10000 });`;
  const r = spawnSync(process.execPath, ['--trace-wasm-compilation-times', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => /compil/i.test(l)).length;
}

test('cold-compile compiles on every call; cold compiles once and then reuses it (the detector sees a cache hit)', () => {
  const oneCold = compileLines(['cold']);
  assert.ok(oneCold > 0, 'a first compilation prints lines');
  assert.equal(compileLines(['cold', 'cold', 'cold']), oneCold, 'later cold calls compile nothing: they reuse the module');
  const oneCompile = compileLines(['cold-compile']);
  assert.ok(oneCompile > 0);
  assert.equal(compileLines(['cold-compile', 'cold-compile', 'cold-compile']), 3 * oneCompile, 'every cold-compile call compiles the whole module again');
});

test('cold-process: a new process per call gives the verified output, and fails with the function\'s own error kind', async () => {
  const v = wasmPlugin.create({ workDir: scratch, memoryLimitMiB: 32 });
  try {
    for (const name of ['noop', 'sha256', 'json', 'noop-as']) {
      const fn = catalog.get(name);
      const input = fn.workload.input(2, 'small');
      correct(fn, input, (await v.invoke(fn, 'cold-process', input, { timeoutMs: 20_000 })).output);
    }
    const counter = catalog.all().find((f) => f.name === 'counter');
    if (counter) {
      for (let i = 0; i < 3; i++) assert.equal(Buffer.from((await v.invoke(counter, 'cold-process', new Uint8Array(0), { timeoutMs: 20_000 })).output).toString(), '1\n');
    }
    await rejectsWith(v.invoke(catalog.get('trap'), 'cold-process', new Uint8Array(0), { timeoutMs: 20_000 }), 'function-error', /trapped/);
    await rejectsWith(v.invoke(catalog.get('memhog'), 'cold-process', new Uint8Array(0), { timeoutMs: 20_000 }), 'memory-limit', /memory limit/);
  } finally {
    await v.teardown();
  }
});

test('cold-process: a looping function is killed at --timeout-ms, and nothing is left running', async () => {
  const v = wasmPlugin.create({ workDir: scratch, memoryLimitMiB: 32 });
  const t0 = Date.now();
  await rejectsWith(v.invoke(catalog.get('loop'), 'cold-process', new Uint8Array(0), { timeoutMs: 1000 }), 'timeout');
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
  await v.teardown();
  // its children name this test's scratch folder (the capped module file) on their command line
  assert.ok(await waitFor(() => processesNaming(scratch).length === 0), 'a cold-process child is still running');
  assert.deepEqual(fs.readdirSync(scratch).filter((f) => f.endsWith('.capped.wasm')), [], 'the capped module files are removed by teardown');
});

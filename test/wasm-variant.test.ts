import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadCatalog } from '../harness/functions/catalog.js';
import { verifyOutput } from '../harness/functions/verify.js';
import type { FunctionEntry } from '../harness/functions/types.js';
import wasmPlugin from '../harness/variants/wasm.js';
import { type Mode } from '../harness/platform/variant.js';
import { rejectsWith } from './helpers.js';

const catalog = await loadCatalog();
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'wasm-test-'));
const variant = wasmPlugin.create({ workDir: scratch, memoryLimitMiB: 32 });
after(async () => {
  await variant.teardown();
  fs.rmSync(scratch, { recursive: true, force: true });
});


function fakeEntry(name: string, wasmPath: string, abi: 'reactor' | 'command'): FunctionEntry {
  return { ...catalog.get('noop'), name, origin: 'user', testOnly: true, wasm: { path: wasmPath, abi }, native: undefined };
}

function wat(name: string, src: string): string {
  const p = path.join(scratch, `${name}.wat`);
  fs.writeFileSync(p, src);
  const out = path.join(scratch, `${name}.wasm`);
  const r = spawnSync('wat2wasm', [p, '-o', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return out;
}

for (const name of ['noop', 'sha256', 'json', 'matmul', 'compress', 'pagerank', 'noop-as', 'matmul-as']) {
  test(`${name}: every mode gives the verified output`, async () => {
    const fn = catalog.get(name);
    const input = fn.workload.input(3, 'small');
    for (const mode of variant.modes as Mode[]) {
      const r = await variant.invoke(fn, mode, input, { timeoutMs: 5000 });
      verifyOutput(fn, input, r.output);
      assert.ok(r.elapsedNs > 0);
    }
  });
}

test('a warm instance serves different inputs one after another', async () => {
  const fn = catalog.get('sha256');
  for (const seed of [1, 2, 3, 1]) {
    const input = fn.workload.input(seed, 'small');
    verifyOutput(fn, input, (await variant.invoke(fn, 'warm', input, { timeoutMs: 5000 })).output);
  }
});

test('a trap is a function-error naming the trap, and the next call works', async () => {
  await rejectsWith(variant.invoke(catalog.get('trap'), 'warm', new Uint8Array(0), { timeoutMs: 5000 }), 'function-error', /trap.*unreachable/i);
  const noop = catalog.get('noop');
  verifyOutput(noop, new Uint8Array(0), (await variant.invoke(noop, 'warm', new Uint8Array(0), { timeoutMs: 5000 })).output);
});

test('memory growth is stopped at the limit', async () => {
  await rejectsWith(variant.invoke(catalog.get('memhog'), 'cold', new Uint8Array(0), { timeoutMs: 5000 }), 'memory-limit', /memory limit: .* of 32\.0 MiB/);
});

test('an invalid module is refused with a clear error', async () => {
  const bad = path.join(scratch, 'garbage.wasm');
  fs.writeFileSync(bad, 'this is not webassembly');
  await rejectsWith(variant.invoke(fakeEntry('garbage', bad, 'reactor'), 'cold', new Uint8Array(0), { timeoutMs: 5000 }), 'invalid-module', /magic/);
  const missing = fakeEntry('missing', path.join(scratch, 'nope.wasm'), 'reactor');
  await rejectsWith(variant.invoke(missing, 'cold', new Uint8Array(0), { timeoutMs: 5000 }), 'invalid-module', /ENOENT|no such file/);
});

test('a module importing what the platform does not provide is refused at instantiation', async () => {
  const p = wat('needs-env', '(module (import "env" "host_thing" (func)) (memory (export "memory") 1) (func (export "fx_invoke") (result i32) (i32.const 0)))');
  await rejectsWith(variant.invoke(fakeEntry('needs-env', p, 'reactor'), 'cold', new Uint8Array(0), { timeoutMs: 5000 }), 'invalid-module', /instantiate/);
});

test('a WASI command module runs cold through _start; warm is refused with the reason', async () => {
  const p = wat('hello-cmd', `(module
    (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (data (i32.const 16) "ok\\n")
    (func (export "_start")
      (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 3))
      (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (call $exit (i32.const 0))))`);
  const fn = fakeEntry('hello-cmd', p, 'command');
  const r = await variant.invoke(fn, 'cold', new Uint8Array(0), { timeoutMs: 5000 });
  assert.equal(Buffer.from(r.output).toString(), 'ok\n');
  assert.match(variant.supports(fn, 'warm') ?? '', /command module.*reactor/);
  await rejectsWith(variant.invoke(fn, 'warm', new Uint8Array(0), { timeoutMs: 5000 }), 'unavailable', /reactor/);
});

test('a non-zero exit status is a function-error with the status', async () => {
  const p = wat('exit3', `(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1) (func (export "_start") (call $exit (i32.const 3))))`);
  await rejectsWith(variant.invoke(fakeEntry('exit3', p, 'command'), 'cold', new Uint8Array(0), { timeoutMs: 5000 }), 'function-error', /status 3/);
});

test('holdIdle keeps an instance per call in this process and answers correctly', async () => {
  const fn = catalog.get('sha256');
  const input = fn.workload.input(1, 'small');
  for (let i = 0; i < 3; i++) verifyOutput(fn, input, await variant.holdIdle!(fn, input));
  await rejectsWith(variant.holdIdle!(fakeEntry('cmd', catalog.get('noop').wasm!.path, 'command'), new Uint8Array(0)), 'unavailable', /reactor/);
});

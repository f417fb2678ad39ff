import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ModuleFormatError, WASM_PAGE, capMemory, sections, withNonce } from '../harness/variants/wasm/module-edit.js';

function wat(src: string): Uint8Array {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wat-'));
  fs.writeFileSync(path.join(dir, 'm.wat'), src);
  const r = spawnSync('wat2wasm', [path.join(dir, 'm.wat'), '-o', path.join(dir, 'm.wasm')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const b = fs.readFileSync(path.join(dir, 'm.wasm'));
  fs.rmSync(dir, { recursive: true });
  return b;
}

const grower = (mem: string) => wat(`(module (memory (export "memory") ${mem}) (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))`);

test('capMemory adds a maximum where there was none, and V8 honours it', () => {
  const m = new WebAssembly.Instance(new WebAssembly.Module(capMemory(grower('1'), 4)));
  const grow = m.exports.grow as (n: number) => number;
  assert.equal(grow(3), 1); // 1 -> 4 pages
  assert.equal(grow(1), -1); // past the cap
  assert.equal((m.exports.memory as WebAssembly.Memory).buffer.byteLength, 4 * WASM_PAGE);
});

test('capMemory lowers a larger maximum and keeps a smaller one', () => {
  const lowered = new WebAssembly.Instance(new WebAssembly.Module(capMemory(grower('1 100'), 2)));
  assert.equal((lowered.exports.grow as (n: number) => number)(2), -1);
  const kept = new WebAssembly.Instance(new WebAssembly.Module(capMemory(grower('1 2'), 50)));
  assert.equal((kept.exports.grow as (n: number) => number)(2), -1);
  assert.equal((kept.exports.grow as (n: number) => number)(1), 1);
});

test('capMemory refuses a module whose initial memory is over the limit', () => {
  assert.throws(() => capMemory(grower('20'), 16), /needs 1\.25 MiB at start, over the 1 MiB limit/);
});

test('a module without memory passes through unchanged', () => {
  const b = wat('(module (func (export "f")))');
  assert.equal(capMemory(b, 1), b);
});

test('withNonce keeps the module valid and changes its bytes', () => {
  const b = grower('1');
  const n1 = withNonce(b, 1);
  const n2 = withNonce(b, 2);
  assert.ok(WebAssembly.validate(n1) && WebAssembly.validate(n2));
  assert.notDeepEqual(n1, n2);
  assert.equal(sections(n1).at(-1)!.id, 0);
});

test('garbage is refused with a clear message', () => {
  assert.throws(() => sections(Buffer.from('not wasm at all')), ModuleFormatError);
  assert.throws(() => sections(Buffer.from('not wasm at all')), /magic/);
  const whole = grower('1');
  const truncated = whole.subarray(0, whole.length - 3); // inside the last section
  assert.throws(() => sections(truncated), /past the end|truncated/);
});

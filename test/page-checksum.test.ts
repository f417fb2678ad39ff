// fxh64, the per-page checksum of snapshot format 2: the WASM SIMD version agrees with the plain JS
// specification, any one changed word changes it, and it refuses lengths it cannot sum.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng } from '../harness/measure/random.js';
import { referenceSum, sumPages, summer } from '../harness/variants/wasm/page-checksum.js';

function bytesOf(n: number, seed: number): Uint8Array {
  const rng = createRng(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rng() * 256);
  return b;
}

test('the WASM sum equals the JS specification, in place in a memory and through the scratch copy', () => {
  const mem = new WebAssembly.Memory({ initial: 3 });
  for (const [len, seed] of [[64, 1], [128, 2], [4096, 3], [4096 * 3, 4], [65536, 5], [64 * 777, 6]] as const) {
    const b = bytesOf(len, seed);
    const want = referenceSum(b);
    new Uint8Array(mem.buffer).set(b, 64);
    assert.equal(summer(mem)(64, len), want, `${len} bytes in place`);
    assert.equal(sumPages(b, len)[0], want, `${len} bytes through the scratch memory`);
  }
  // known value: a page of zeroes (a change of the algorithm or its constants shows here)
  assert.equal(BigInt.asUintN(64, referenceSum(new Uint8Array(4096))).toString(16), '69ee439e966578a');
});

test('per page: more pages than the scratch memory holds at once come out in order', () => {
  const P = 4096;
  const b = bytesOf(P * 300, 7); // 1.17 MiB: the scratch memory takes 1 MiB at a time
  const sums = sumPages(b, P);
  assert.equal(sums.length, 300);
  for (const k of [0, 1, 255, 256, 299]) assert.equal(sums[k], referenceSum(b.subarray(k * P, (k + 1) * P)), `page ${k}`);
});

test('any one changed word changes the sum; moving words changes it too', () => {
  const page = bytesOf(4096, 8);
  const base = referenceSum(page);
  const mem = new WebAssembly.Memory({ initial: 1 });
  const m = new Uint8Array(mem.buffer);
  const sum = summer(mem);
  for (let w = 0; w < 1024; w++) {
    m.set(page);
    m[w * 4 + (w % 4)]! ^= 1 << (w % 8);
    assert.notEqual(sum(0, 4096), base, `a flipped bit in word ${w}`);
  }
  m.set(page);
  m.copyWithin(0, 64, 128); // block 0 := block 1
  assert.notEqual(sum(0, 4096), base, 'a repeated block');
});

test('lengths that are not whole 64-byte blocks, and ranges outside the memory, are refused', () => {
  const mem = new WebAssembly.Memory({ initial: 1 });
  assert.throws(() => summer(mem)(0, 100), /100 bytes is not a positive multiple of 64/);
  assert.throws(() => summer(mem)(0, 0), /not a positive multiple of 64/);
  assert.throws(() => summer(mem)(65536 - 64, 128), /outside a memory of 65536 bytes/);
  assert.throws(() => referenceSum(new Uint8Array(10)), /not a positive multiple of 64/);
  assert.throws(() => sumPages(new Uint8Array(4096 + 64), 4096), /not whole pages of 4096/);
});

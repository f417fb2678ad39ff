// Workload of the TEST-ONLY statefill fixture (wasm-fixtures/src/statefill.c): an instance holding
// N MiB of state, N being its input. Its oracle is an instance's SECOND call with that input: what a
// child forked from a parent that served one call answers (calls=2, the parent's checksum).
import type { Scale, Workload } from '../types.js';
import { ascii } from './prng.js';

/** The answer of the `call`-th call of one instance to input `mib`. */
export function statefillAnswer(mib: number, call: number): string {
  const words = mib * 2 ** 18;
  let x = (0x12345678 ^ mib) >>> 0;
  let h = 2166136261;
  for (let i = 0; i < words; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    h = Math.imul(h ^ x, 16777619);
  }
  return `mib=${mib} calls=${call} sum=${(h >>> 0).toString(16).padStart(8, '0')}\n`;
}

export const statefill: Workload = {
  name: 'statefill',
  summary: 'TEST ONLY: N MiB of instance state (N = the input), filled on the first call; prints its call count and a checksum of the whole state',
  input(_seed: number, scale: Scale): Uint8Array {
    return ascii(scale === 'large' ? '16' : '1');
  },
  expected(input: Uint8Array): Uint8Array {
    const mib = Number(Buffer.from(input).toString('latin1').trim());
    if (!Number.isInteger(mib) || mib < 1 || mib > 2048) throw new Error(`statefill: input must be a size in MiB from 1 to 2048, got "${Buffer.from(input).toString('latin1').slice(0, 20)}"`);
    return ascii(statefillAnswer(mib, 2));
  },
};

// Workload of the TEST-ONLY counter fixture: it prints how many calls its instance has served.
// The oracle is what a fresh instance answers ("1\n"), so only a first call verifies; tests of
// instance reuse read the numbers themselves.
import type { Scale, Workload } from '../types.js';
import { ascii } from './prng.js';

export const counter: Workload = {
  name: 'counter',
  summary: 'TEST ONLY: calls served by this instance (a fresh one answers 1)',
  input(_seed: number, _scale: Scale): Uint8Array {
    return new Uint8Array(0);
  },
  expected(_input: Uint8Array): Uint8Array {
    return ascii('1\n');
  },
};

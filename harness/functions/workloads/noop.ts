import type { Scale, Workload } from '../types.js';
import { ascii } from './prng.js';

export const noop: Workload = {
  name: 'noop',
  summary: 'consume stdin (empty), print "ok\\n"',
  input(_seed: number, _scale: Scale): Uint8Array {
    return new Uint8Array(0);
  },
  expected(_input: Uint8Array): Uint8Array {
    return ascii('ok\n');
  },
};

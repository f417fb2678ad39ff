// Workloads of the TEST-ONLY misbehaving fixtures. They never produce valid output:
// expected() returns a sentinel the fixtures never print, so nothing they do verifies.
import type { Scale, Workload } from '../types.js';
import { ascii } from './prng.js';

function misbehaving(name: string, summary: string): Workload {
  return {
    name,
    summary,
    input(_seed: number, _scale: Scale): Uint8Array {
      return new Uint8Array(0);
    },
    expected(_input: Uint8Array): Uint8Array {
      return ascii(`<${name}: misbehaving fixture, no valid output>`);
    },
  };
}

export const loop = misbehaving('loop', 'TEST ONLY: never returns');
export const trap = misbehaving('trap', 'TEST ONLY: traps (wasm unreachable / SIGILL)');
export const memhog = misbehaving('memhog', 'TEST ONLY: allocates until malloc fails, exit(3)');
export const crash = misbehaving('crash', 'TEST ONLY: NULL write (SIGSEGV; wasm abort)');

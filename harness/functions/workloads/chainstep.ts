import type { Scale, Workload } from '../types.js';
import { Prng } from './prng.js';

/** Input sizes of one stage; the chains experiment picks its own payload sizes (64 B … 1 MiB). */
export const CHAINSTEP_SIZES: Record<Scale, number> = { small: 4096, large: 1 << 20 };

/** The bytes of `input` with `stages` added to each (mod 256): the output of a chain of `stages` chainstep functions. */
export function chainExpected(input: Uint8Array, stages: number): Uint8Array {
  const out = new Uint8Array(input.length);
  const k = ((stages % 256) + 256) % 256;
  for (let i = 0; i < input.length; i++) out[i] = (input[i]! + k) & 0xff;
  return out;
}

/** Random bytes of a given length for chain payloads (seeded). */
export function chainPayload(size: number, seed: number): Uint8Array {
  return new Prng((seed * 2654435761 + size) >>> 0).bytes(size);
}

export const chainstep: Workload = {
  name: 'chainstep',
  summary: 'one stage of a function chain: every input byte + 1 (mod 256); N stages give input + N',
  input(seed: number, scale: Scale): Uint8Array {
    return chainPayload(CHAINSTEP_SIZES[scale], seed);
  },
  expected(input: Uint8Array): Uint8Array {
    return chainExpected(input, 1);
  },
};

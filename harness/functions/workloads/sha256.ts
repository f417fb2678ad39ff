import { createHash } from 'node:crypto';
import type { Scale, Workload } from '../types.js';
import { Prng, ascii } from './prng.js';

export const SHA256_SIZES: Record<Scale, number> = { small: 4096, large: 4 << 20 };

export const sha256: Workload = {
  name: 'sha256',
  summary: 'SHA-256 of random bytes (4 KiB small, 4 MiB large), lowercase hex + "\\n"',
  input(seed: number, scale: Scale): Uint8Array {
    return new Prng(seed ^ 0x5a256).bytes(SHA256_SIZES[scale]);
  },
  expected(input: Uint8Array): Uint8Array {
    return ascii(createHash('sha256').update(input).digest('hex') + '\n');
  },
};

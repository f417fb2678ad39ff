import type { Scale, Workload } from '../types.js';
import { Prng, ascii } from './prng.js';

/** Both scales fit the eBPF version's input limit (3072 bytes, EBPF_MAX_INPUT in harness/variants/ebpf.ts). */
export const FNV1A_SIZES: Record<Scale, number> = { small: 1024, large: 3072 };

/** FNV-1a 32 (offset basis 2166136261, prime 16777619). */
export function fnv1a32(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h >>> 0;
}

export const fnv1a: Workload = {
  name: 'fnv1a',
  summary: 'FNV-1a 32 of random bytes (1 KiB small, 3 KiB large): "fnv1a32=<hex8> len=<n>\\n"',
  input(seed: number, scale: Scale): Uint8Array {
    return new Prng(seed ^ 0xf1a1).bytes(FNV1A_SIZES[scale]);
  },
  expected(input: Uint8Array): Uint8Array {
    return ascii(`fnv1a32=${fnv1a32(input).toString(16).padStart(8, '0')} len=${input.length}\n`);
  },
};

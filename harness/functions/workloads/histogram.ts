import type { Scale, Workload } from '../types.js';
import { Prng, ascii } from './prng.js';

/** Both scales fit the eBPF version's input limit (3072 bytes, EBPF_MAX_INPUT in harness/variants/ebpf.ts). */
export const HISTOGRAM_SIZES: Record<Scale, number> = { small: 1024, large: 3072 };

const COMMON = ascii('etaoin shrdlucmfwypvbgkjqxz\n0123456789');

export const histogram: Workload = {
  name: 'histogram',
  summary: 'byte-value histogram of text-like bytes (1 KiB small, 3 KiB large): "len= distinct=" then "<hex2> <count>" per value',
  input(seed: number, scale: Scale): Uint8Array {
    const rng = new Prng(seed ^ 0x4157);
    const out = new Uint8Array(HISTOGRAM_SIZES[scale]);
    // mostly a skewed small alphabet (earlier letters likelier), sometimes any byte
    for (let i = 0; i < out.length; i++) {
      out[i] = rng.chance(0.9) ? (COMMON[Math.min(rng.int(COMMON.length), rng.int(COMMON.length))] as number) : rng.int(256);
    }
    return out;
  },
  expected(input: Uint8Array): Uint8Array {
    const count = new Array<number>(256).fill(0);
    for (const b of input) count[b]! += 1;
    const lines = [`len=${input.length} distinct=${count.filter((c) => c > 0).length}`];
    count.forEach((c, v) => {
      if (c > 0) lines.push(`${v.toString(16).padStart(2, '0')} ${c}`);
    });
    return ascii(lines.join('\n') + '\n');
  },
};

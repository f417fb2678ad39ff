import type { Scale, Workload } from '../types.js';
import { Lcg, ascii, parseU32s } from './prng.js';

export const MATMUL_N: Record<Scale, number> = { small: 16, large: 256 };

export const matmul: Workload = {
  name: 'matmul',
  summary: 'n x n uint32 matrix product (n=16 small, 256 large), print sum and xor',
  input(seed: number, scale: Scale): Uint8Array {
    return ascii(`${MATMUL_N[scale]} ${seed >>> 0}\n`);
  },
  expected(input: Uint8Array): Uint8Array {
    const [n, seed] = parseU32s(input, 2, 'matmul') as [number, number];
    if (n < 1 || n > 4096) throw new Error(`matmul: n=${n} out of range`);
    const lcg = new Lcg(seed);
    const a = new Uint32Array(n * n);
    const b = new Uint32Array(n * n);
    for (let i = 0; i < n * n; i++) a[i] = lcg.next();
    for (let i = 0; i < n * n; i++) b[i] = lcg.next();
    // plain i-j-k dot products (the C code uses i-k-j; the wrap-around sum is the same)
    let sum = 0;
    let xor = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let c = 0;
        for (let k = 0; k < n; k++) c = (c + Math.imul(a[i * n + k]!, b[k * n + j]!)) >>> 0;
        sum += c; // < n*n*2^32 <= 2^56 only for n=4096; exact for n <= 2048
        xor = (xor ^ c) >>> 0;
      }
    }
    if (n > 2048) throw new Error('matmul oracle: n > 2048 would exceed exact JS integers');
    return ascii(`n=${n} sum=${sum} xor=${xor}\n`);
  },
};

// Oracle for wasm-fixtures/src/compress.c: an independent TypeScript implementation of the
// same FXZ1 compressor (format and greedy match rules documented in compress.c), plus a
// decompressor the tests use to check the round trip from this side too.
import type { Scale, Workload } from '../types.js';
import { Prng } from './prng.js';

export const COMPRESS_SIZES: Record<Scale, number> = { small: 8 << 10, large: 1 << 20 };

const HASH_BITS = 16;
const MAX_OFFSET = 65535;

function rd32(p: Uint8Array, i: number): number {
  return (p[i]! | (p[i + 1]! << 8) | (p[i + 2]! << 16) | (p[i + 3]! << 24)) >>> 0;
}

class ByteWriter {
  buf: Uint8Array;
  len = 0;
  constructor(cap: number) {
    this.buf = new Uint8Array(cap);
  }
  byte(b: number): void {
    this.buf[this.len++] = b;
  }
  bytes(src: Uint8Array, from: number, to: number): void {
    this.buf.set(src.subarray(from, to), this.len);
    this.len += to - from;
  }
  extLen(v: number): void {
    while (v >= 255) {
      this.byte(255);
      v -= 255;
    }
    this.byte(v);
  }
}

export function fxzCompress(input: Uint8Array): Uint8Array {
  const n = input.length;
  const w = new ByteWriter(8 + n + Math.floor(n / 255) + 16);
  w.bytes(new Uint8Array([0x46, 0x58, 0x5a, 0x31]), 0, 4); // "FXZ1"
  w.byte(n & 0xff);
  w.byte((n >>> 8) & 0xff);
  w.byte((n >>> 16) & 0xff);
  w.byte((n >>> 24) & 0xff);
  if (n === 0) return w.buf.slice(0, w.len);

  const sequence = (litFrom: number, litTo: number, matchLen: number, offset: number): void => {
    const nlit = litTo - litFrom;
    const m = matchLen - 4;
    let token = Math.min(nlit, 15) << 4;
    if (matchLen > 0) token |= Math.min(m, 15);
    w.byte(token);
    if (nlit >= 15) w.extLen(nlit - 15);
    w.bytes(input, litFrom, litTo);
    if (matchLen > 0) {
      w.byte(offset & 0xff);
      w.byte(offset >>> 8);
      if (m >= 15) w.extLen(m - 15);
    }
  };

  const table = new Int32Array(1 << HASH_BITS).fill(-1);
  let anchor = 0;
  let i = 0;
  while (i + 4 <= n) {
    const v = rd32(input, i);
    const h = Math.imul(v, 2654435761 | 0) >>> (32 - HASH_BITS);
    const cand = table[h]!;
    table[h] = i;
    if (cand >= 0 && i - cand <= MAX_OFFSET && rd32(input, cand) === v) {
      let m = 4;
      while (i + m < n && input[cand + m] === input[i + m]) m++;
      sequence(anchor, i, m, i - cand);
      i += m;
      anchor = i;
    } else {
      i++;
    }
  }
  if (anchor < n) sequence(anchor, n, 0, 0);
  return w.buf.slice(0, w.len);
}

export function fxzDecompress(c: Uint8Array): Uint8Array {
  const bad = (why: string): never => {
    throw new Error(`FXZ1: ${why}`);
  };
  if (c.length < 8 || c[0] !== 0x46 || c[1] !== 0x58 || c[2] !== 0x5a || c[3] !== 0x31) bad('bad header');
  const n = rd32(c, 4);
  const out = new Uint8Array(n);
  let p = 8;
  let o = 0;
  const extLen = (v: number): number => {
    for (;;) {
      if (p >= c.length) bad('truncated length');
      const b = c[p++]!;
      v += b;
      if (b !== 255) return v;
    }
  };
  while (o < n) {
    if (p >= c.length) bad('truncated token');
    const t = c[p++]!;
    let lit = t >> 4;
    if (lit === 15) lit = extLen(lit);
    if (lit > c.length - p || lit > n - o) bad('literal overrun');
    out.set(c.subarray(p, p + lit), o);
    p += lit;
    o += lit;
    if (o === n) break;
    if (c.length - p < 2) bad('truncated offset');
    const off = c[p]! | (c[p + 1]! << 8);
    p += 2;
    let m = t & 15;
    if (m === 15) m = extLen(m);
    m += 4;
    if (off === 0 || off > o || m > n - o) bad('bad match');
    for (let k = 0; k < m; k++, o++) out[o] = out[o - off]!;
  }
  if (p !== c.length) bad('trailing bytes');
  return out;
}

const WORDS = [
  'the', 'function', 'serverless', 'request', 'response', 'latency', 'cold', 'start', 'warm',
  'instance', 'memory', 'linear', 'module', 'kernel', 'probe', 'trace', 'packet', 'socket',
  'buffer', 'queue', 'worker', 'sandbox', 'snapshot', 'restore', 'page', 'fault', 'cache',
];

/** Semi-compressible bytes: word text with numbers, some random runs, some repeated chunks. */
function compressibleBytes(seed: number, size: number): Uint8Array {
  const r = new Prng(seed ^ 0xc0de);
  const out = new Uint8Array(size);
  let n = 0;
  const put = (b: number): void => {
    if (n < size) out[n++] = b;
  };
  while (n < size) {
    const kind = r.int(100);
    if (kind < 70) {
      const word = r.pick(WORDS);
      for (let i = 0; i < word.length; i++) put(word.charCodeAt(i));
      put(r.chance(0.1) ? 0x0a : 0x20);
    } else if (kind < 85) {
      const digits = String(r.int(100000));
      for (let i = 0; i < digits.length; i++) put(digits.charCodeAt(i));
      put(0x2c);
    } else if (kind < 93) {
      const len = r.range(4, 40);
      for (let i = 0; i < len; i++) put(r.int(256));
    } else if (n > 64) {
      const len = r.range(8, 64);
      const from = r.int(n - len + 1);
      for (let i = 0; i < len; i++) put(out[from + i]!);
    }
  }
  return out;
}

export const compress: Workload = {
  name: 'compress',
  summary: 'LZ77 (FXZ1) compression with in-function round-trip check (8 KiB small, 1 MiB large)',
  input(seed: number, scale: Scale): Uint8Array {
    return compressibleBytes(seed, COMPRESS_SIZES[scale]);
  },
  expected(input: Uint8Array): Uint8Array {
    return fxzCompress(input);
  },
};

// Deterministic generators used by the workloads.
//
// Prng: input generator for the TS side only (a Weyl sequence passed through a
// murmur3-style finaliser). Nothing in C depends on it.
// Lcg: mirror of fx_lcg() in wasm-fixtures/support/fx_common.h (and as/matmul.ts),
// used by the oracles of workloads that generate their data inside the function.

export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** uniform uint32 */
  u32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** integer in [0, n) for 1 <= n <= 2^32 */
  int(n: number): number {
    return this.u32() % n;
  }

  /** integer in [lo, hi] */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** true with probability p */
  chance(p: number): boolean {
    return this.u32() < p * 4294967296;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Prng.pick: empty list');
    return items[this.int(items.length)] as T;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const v = this.u32();
      out[i] = v & 0xff;
      out[i + 1] = (v >>> 8) & 0xff;
      out[i + 2] = (v >>> 16) & 0xff;
      out[i + 3] = v >>> 24;
    }
    for (; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

/** state' = state * 1664525 + 1013904223 (mod 2^32); output = state' ^ (state' >> 16) */
export class Lcg {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (Math.imul(this.state, 1664525) + 1013904223) >>> 0;
    return (this.state ^ (this.state >>> 16)) >>> 0;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function ascii(text: string): Uint8Array {
  return encoder.encode(text);
}

export function utf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Parse whitespace-separated unsigned decimal integers (all < 2^32), as the C side does. */
export function parseU32s(input: Uint8Array, count: number, what: string): number[] {
  const text = utf8(input).trim();
  const parts = text === '' ? [] : text.split(/[ \t\r\n]+/);
  if (parts.length !== count || parts.some((p) => !/^[0-9]+$/.test(p) || Number(p) > 0xffffffff)) {
    throw new Error(`${what}: expected ${count} unsigned integers, got ${JSON.stringify(text.slice(0, 80))}`);
  }
  return parts.map(Number);
}

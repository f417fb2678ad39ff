// Seeded pseudo-random numbers, so every shuffle and bootstrap can be replayed from its seed.

/** A source of uniform numbers in [0, 1). */
export type Rng = () => number;

/**
 * mulberry32: a 32-bit state generator, small and fast, good enough for shuffling run order and
 * bootstrap resampling (not for cryptography). The same seed always gives the same sequence.
 */
export function createRng(seed: number): Rng {
  let state = (Math.trunc(seed) >>> 0) || 0x9e3779b9;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
}

/** A whole number in [0, n). */
export function randomInt(n: number, rng: Rng): number {
  return Math.floor(rng() * n);
}

/** Fisher–Yates shuffle; returns a new array and leaves `items` untouched. */
export function shuffle<T>(items: readonly T[], rng: Rng): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(i + 1, rng);
    const tmp = out[i] as T;
    out[i] = out[j] as T;
    out[j] = tmp;
  }
  return out;
}

/** `bytes` random bytes as lowercase hex. */
export function randomHex(bytes: number, rng: Rng): string {
  let s = '';
  for (let i = 0; i < bytes; i++) s += randomInt(256, rng).toString(16).padStart(2, '0');
  return s;
}

// Monotonic clock in nanoseconds. A number keeps exact integer ns for about 104 days of uptime
// (Number.MAX_SAFE_INTEGER ns), which is plenty for a monotonic clock.

/** Monotonic time in ns (process.hrtime.bigint) as a number. */
export function now(): number {
  return Number(process.hrtime.bigint());
}

/** ns since `start` (a value from now()). */
export function elapsedNs(start: number): number {
  return now() - start;
}

export const NS_PER_US = 1e3;
export const NS_PER_MS = 1e6;
export const NS_PER_S = 1e9;

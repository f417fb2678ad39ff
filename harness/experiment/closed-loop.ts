// Closed-loop load: `concurrency` callers, each sending its next request when the previous one is answered.
import type { Rng } from '../measure/random.js';

export interface LoadResult {
  /** completed requests per second in each window */
  windowsPerSec: number[];
  /** a uniform sample (reservoir) of request latencies, ns */
  latencySampleNs: number[];
  completed: number;
  elapsedNs: number;
}

export interface LoadSpec {
  concurrency: number;
  durationMs: number;
  warmupMs: number;
  windowMs: number;
  /** largest latency sample kept */
  reservoir: number;
  rng: Rng;
  /** one request; resolves after the reply was verified, rejects on any failure */
  call: (worker: number) => Promise<void>;
}

export async function closedLoop(s: LoadSpec): Promise<LoadResult> {
  const ns = () => Number(process.hrtime.bigint());
  const warmEnd = ns() + s.warmupMs * 1e6;
  await Promise.all(Array.from({ length: s.concurrency }, async (_, w) => {
    while (ns() < warmEnd) await s.call(w);
  }));
  const start = ns();
  const end = start + s.durationMs * 1e6;
  const windows = new Array<number>(Math.ceil(s.durationMs / s.windowMs)).fill(0);
  const sample: number[] = [];
  let completed = 0;
  await Promise.all(Array.from({ length: s.concurrency }, async (_, w) => {
    for (;;) {
      const t0 = ns();
      if (t0 >= end) return;
      await s.call(w);
      const t1 = ns();
      if (t1 > end) return; // the window closed while it was in flight
      completed++;
      windows[Math.min(windows.length - 1, Math.floor((t1 - start) / (s.windowMs * 1e6)))]!++;
      if (sample.length < s.reservoir) sample.push(t1 - t0);
      else {
        const j = Math.floor(s.rng() * completed);
        if (j < s.reservoir) sample[j] = t1 - t0;
      }
    }
  }));
  return { windowsPerSec: windows.map((n) => n / (s.windowMs / 1000)), latencySampleNs: sample, completed, elapsedNs: ns() - start };
}

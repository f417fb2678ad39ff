// What the parallel experiment's figures, report and notebook derive from summary rows (medians):
// speed-up and efficiency against one thread, the WASM/native ratio per kernel and its geometric mean.
import type { SummaryRow } from '../results/schema.js';
import { okRows } from './common.js';
import { parseParams } from './params.js';

/** Published reference numbers (shared/notes/anchors.md), not measured here. */
export const PUBLISHED_RATIOS = {
  /** "Not So Fast" (ATC'19): WASM 1.45–1.55× slower than native on SPEC, on average */
  notSoFast: { lo: 1.45, hi: 1.55, label: '"Not So Fast" (ATC\'19, published): 1.45–1.55×' },
  /** "Leaps and bounds" (Spink et al.): standalone runtimes within 20% of native on x86-64 */
  leapsAndBounds: { at: 1.2, label: '"Leaps and bounds" (published): within 20%' },
};

export interface ParallelPoint {
  kernel: string;
  variant: string;
  size: number;
  threads: number;
  oversubscribed: boolean;
  /** median time of one run, µs, and its 95% CI */
  us: number;
  lo: number;
  hi: number;
  /** the same variant's one-thread median ÷ this median (NaN without a one-thread cell) */
  speedup: number;
  /** speedup ÷ threads */
  efficiency: number;
  /** this median ÷ native's median at the same size and threads (NaN without one) */
  vsNative: number;
}

/** the implementation a row measured: its variant, and for wasm-threads driven by the module's own
 *  thread-spawn calls (mode thread-spawn) "wasm-threads (thread-spawn)" */
export function seriesOf(r: Pick<SummaryRow, 'variant' | 'mode'>): string {
  return r.mode === 'thread-spawn' ? `${r.variant} (thread-spawn)` : r.variant;
}

export function parallelPoints(rows: readonly SummaryRow[]): ParallelPoint[] {
  const cells = okRows(rows, ['time']).filter((r) => r.experiment === 'parallel' || r.experiment === '');
  const key = (v: string, k: string, size: number, t: number) => `${v}|${k}|${size}|${t}`;
  const med = new Map<string, number>();
  const parsed = cells.map((r) => {
    const p = parseParams(r.params);
    const size = Number(p.size);
    const threads = Number(p.threads);
    const variant = seriesOf(r);
    med.set(key(variant, r.function, size, threads), r.p50);
    return { r, variant, size, threads, oversubscribed: p.oversubscribed === 'true' };
  });
  return parsed
    .filter((x) => Number.isFinite(x.size) && Number.isFinite(x.threads))
    .map(({ r, variant, size, threads, oversubscribed }) => {
      const one = med.get(key(variant, r.function, size, 1));
      const nat = med.get(key('native', r.function, size, threads));
      const speedup = one !== undefined ? one / r.p50 : NaN;
      return {
        kernel: r.function, variant, size, threads, oversubscribed,
        us: r.p50, lo: r.ci95_median_lo, hi: r.ci95_median_hi,
        speedup, efficiency: speedup / threads, vsNative: nat !== undefined ? r.p50 / nat : NaN,
      };
    })
    .sort((a, b) => a.kernel.localeCompare(b.kernel) || a.variant.localeCompare(b.variant) || a.size - b.size || a.threads - b.threads);
}

export interface RatioRow {
  kernel: string;
  /** wasm, wasm-simd (one thread), wasm-threads (at `threads`) */
  variant: string;
  size: number;
  threads: number;
  ratio: number;
}

/**
 * WASM ÷ native per kernel at its largest size measured on both sides: wasm and wasm-simd at one
 * thread, wasm-threads at the most threads without oversubscription; then the geometric mean over the
 * kernels as kernel "geomean".
 */
export function wasmNativeRatios(points: readonly ParallelPoint[]): RatioRow[] {
  const out: RatioRow[] = [];
  const kernels = [...new Set(points.map((p) => p.kernel))].sort();
  for (const variant of ['wasm', 'wasm-simd', 'wasm-threads']) {
    for (const kernel of kernels) {
      const mine = points.filter((p) => p.kernel === kernel && p.variant === variant && Number.isFinite(p.vsNative) && !p.oversubscribed);
      if (!mine.length) continue;
      const size = Math.max(...mine.map((p) => p.size));
      const atSize = mine.filter((p) => p.size === size);
      const t = variant === 'wasm-threads' ? Math.max(...atSize.map((p) => p.threads)) : 1;
      const p = atSize.find((x) => x.threads === t);
      if (p) out.push({ kernel, variant, size, threads: t, ratio: p.vsNative });
    }
    const rs = out.filter((r) => r.variant === variant && r.kernel !== 'geomean');
    if (rs.length) out.push({ kernel: 'geomean', variant, size: NaN, threads: NaN, ratio: Math.exp(rs.reduce((s, r) => s + Math.log(r.ratio), 0) / rs.length) });
  }
  return out;
}

/** WASM SIMD speed-up over scalar per kernel and size (one thread each) */
export function simdSpeedups(points: readonly ParallelPoint[]): { kernel: string; size: number; speedup: number }[] {
  const out: { kernel: string; size: number; speedup: number }[] = [];
  for (const s of points.filter((p) => p.variant === 'wasm-simd' && p.threads === 1)) {
    const scalar = points.find((p) => p.variant === 'wasm' && p.kernel === s.kernel && p.size === s.size && p.threads === 1);
    if (scalar) out.push({ kernel: s.kernel, size: s.size, speedup: scalar.us / s.us });
  }
  return out;
}

// The parallel experiment's derived tables: parallel.txt (speed-up, efficiency, WASM/native ratios,
// SIMD speed-ups, fan-out completion) written next to summary.csv; the same lines are printed.
import fs from 'node:fs';
import path from 'node:path';
import type { SummaryRow } from '../results/schema.js';
import { PUBLISHED_RATIOS, parallelPoints, simdSpeedups, wasmNativeRatios } from '../figures/parallel-derive.js';
import { fanoutPoints } from '../figures/parallel-fanout.js';

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');

export function parallelReport(rows: readonly SummaryRow[], runDir: string): string[] {
  const pts = parallelPoints(rows);
  const lines: string[] = [];
  if (pts.length) {
    lines.push('kernel     variant       size       threads  median_ms  speedup  efficiency  vs_native');
    for (const p of pts) {
      lines.push(`${p.kernel.padEnd(10)} ${p.variant.padEnd(13)} ${String(p.size).padEnd(10)} ${(String(p.threads) + (p.oversubscribed ? '*' : '')).padEnd(8)} ${(p.us / 1000).toFixed(3).padStart(9)}  ${f2(p.speedup).padStart(7)}  ${f2(p.efficiency).padStart(10)}  ${f2(p.vsNative).padStart(9)}`);
    }
    lines.push('(* oversubscribed: more threads than CPUs)');
    const ratios = wasmNativeRatios(pts);
    for (const r of ratios) lines.push(`WASM/native ${r.variant.padEnd(12)} ${r.kernel.padEnd(9)} ${r.kernel === 'geomean' ? '' : `size ${r.size} threads ${r.threads} `}${r.ratio.toFixed(2)}x`);
    lines.push(`published, not measured here: ${PUBLISHED_RATIOS.notSoFast.label}; ${PUBLISHED_RATIOS.leapsAndBounds.label}`);
    for (const s of simdSpeedups(pts)) lines.push(`WASM SIMD128 over scalar: ${s.kernel} size ${s.size}: ${s.speedup.toFixed(2)}x`);
  }
  for (const f of fanoutPoints(rows)) {
    lines.push(`fan-out ${f.substrate} pool=${f.pool} N=${f.n}: job ${(f.jobUs / 1000).toFixed(2)} ms, straggler ${(f.stragglerUs / 1000).toFixed(2)} ms`);
  }
  if (lines.length) fs.writeFileSync(path.join(runDir, 'parallel.txt'), lines.join('\n') + '\n');
  return lines;
}

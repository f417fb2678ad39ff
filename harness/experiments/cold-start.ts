// Cold start: from the invocation's arrival to the verified response, with a fresh instance every time.
import fs from 'node:fs';
import path from 'node:path';
import type { Experiment, FigureData } from '../experiment/context.js';
import { measureLatency } from '../experiment/latency.js';
import { compareMedians, writeComparisonCsv } from '../results/comparison.js';
import { createRng } from '../measure/random.js';
import { latencyFiguresByPath } from '../figures/by-path.js';
import { drawFigures } from '../figures/draw.js';

/** "container/cold:wasm/cold" -> the two sides of a ratio */
export function parseComparison(spec: string): { numerator: { variant: string; mode: string }; denominator: { variant: string; mode: string } } {
  const m = /^([\w+-]+)\/([\w-]+):([\w+-]+)\/([\w-]+)$/.exec(spec);
  if (!m) throw new Error(`--compare wants variant/mode:variant/mode, got "${spec}"`);
  return { numerator: { variant: m[1]!, mode: m[2]! }, denominator: { variant: m[3]!, mode: m[4]! } };
}

export const coldStart: Experiment = {
  name: 'cold-start',
  summary: 'cold start of every variant x function: from the invocation arriving to its verified response, a new instance each time',
  notebook: 'cold-start.ipynb',
  flags: {
    compare: { type: 'string', help: 'cold-start: ratio of medians to report, numerator:denominator (default container/cold:wasm/cold)' },
  },
  async run(ctx) {
    parseComparison((ctx.args.extra.compare as string | undefined) ?? 'container/cold:wasm/cold');
    await measureLatency(ctx, { modes: ['cold-compile', 'cold'], metric: 'cold_start', reps: ctx.reps(15, 100), warmup: ctx.warmup(2, 5), paths: ['direct', 'gateway'] });
  },
  async figures(data: FigureData, dir: string) {
    return drawFigures(latencyFiguresByPath(data.summary, { name: 'cold-start', title: 'Cold start', metric: 'cold_start', quantity: 'cold start' }), dir);
  },
  report(data, runDir, args) {
    return coldStartRatios(data, runDir, (args.extra.compare as string | undefined) ?? 'container/cold:wasm/cold');
  },
};

/** The container-vs-WASM ratio table, written next to summary.csv and printed. */
export function coldStartRatios(data: FigureData, runDir: string, spec = 'container/cold:wasm/cold'): string[] {
  const sides = parseComparison(spec);
  const lines: string[] = [];
  const all = [];
  for (const p of ['gateway', 'direct']) {
    const rows = compareMedians({ rows: data.raw.filter((r) => r.metric === 'cold_start'), metric: 'cold_start', path: p, ...sides, rng: createRng(7) });
    all.push(...rows);
    for (const r of rows) {
      if (!Number.isFinite(r.ratio)) continue;
      lines.push(`${p.padEnd(8)} ${r.function.padEnd(10)} ${spec}: ${r.ratio.toFixed(1)}x (95% CI ${r.ratio_ci95_lo.toFixed(1)}-${r.ratio_ci95_hi.toFixed(1)}), medians ${r.median_numerator.toFixed(1)} vs ${r.median_denominator.toFixed(1)} us`);
    }
  }
  if (all.length) writeComparisonCsv(path.join(runDir, 'cold-start-ratios.csv'), all);
  if (!lines.length) lines.push(`no ${spec} ratio: one side was not measured (see skipped rows in summary.csv)`);
  fs.writeFileSync(path.join(runDir, 'cold-start-ratios.txt'), lines.join('\n') + '\n', { flag: 'wx' });
  return lines;
}

// Cold start: from the invocation's arrival to the verified response, with a fresh instance every time.
import fs from 'node:fs';
import path from 'node:path';
import type { Experiment, FigureData } from '../experiment/context.js';
import { measureLatency } from '../experiment/latency.js';
import { compareMedians, writeComparisonCsv, type ComparisonRow } from '../results/comparison.js';
import { ratioFigure } from '../figures/ratios.js';
import { createRng } from '../measure/random.js';
import { latencyFiguresByPath } from '../figures/by-path.js';
import { drawFigures } from '../figures/draw.js';

/** "container/cold:wasm/cold" -> the two sides of a ratio */
export function parseComparison(spec: string): { numerator: { variant: string; mode: string }; denominator: { variant: string; mode: string } } {
  const m = /^([\w+-]+)\/([\w-]+):([\w+-]+)\/([\w-]+)$/.exec(spec);
  if (!m) throw new Error(`--compare wants variant/mode:variant/mode, got "${spec}"`);
  return { numerator: { variant: m[1]!, mode: m[2]! }, denominator: { variant: m[3]!, mode: m[4]! } };
}

/** The cold modes of the WASM variant the container cold start is set against: a cached compiled
 *  module (cold), a compile each time (cold-compile), a new process each time (cold-process). */
export const WASM_COLD_MODES = ['cold', 'cold-compile', 'cold-process'] as const;
/** the container runtimes whose cold start is set against WASM's by default: runc, containerd, Docker */
export const CONTAINER_VARIANTS = ['container', 'containerd', 'docker'];

export const coldStart: Experiment = {
  name: 'cold-start',
  summary: 'cold start of every variant x function: from the invocation arriving to its verified response, a new instance each time',
  notebook: 'cold-start.ipynb',
  flags: {
    compare: { type: 'string', help: 'cold-start: one ratio of medians to report instead of the default set, numerator:denominator (e.g. native/cold:wasm/cold); default: container/cold against each WASM cold mode' },
  },
  async run(ctx) {
    const spec = ctx.args.extra.compare as string | undefined;
    if (spec) parseComparison(spec);
    await measureLatency(ctx, { modes: ['cold-compile', 'cold', 'cold-process', 'local-fork'], metric: 'cold_start', reps: ctx.reps(15, 100), warmup: ctx.warmup(2, 5), paths: ['direct', 'gateway'] });
  },
  async figures(data: FigureData, dir: string) {
    return drawFigures([
      ...latencyFiguresByPath(data.summary, { name: 'cold-start', title: 'Cold start', metric: 'cold_start', quantity: 'cold start', preface: MODE_MEANINGS }),
      ratioFigure(coldStartComparisons(data.raw), {
        name: 'cold-start-ratios',
        title: 'Cold start: each container runtime ÷ WASM, per WASM cold mode',
        subtitle: `${MODE_MEANINGS} ● ratio of medians, bar: percentile-bootstrap 95% CI (2000 resamples, seed 7); dashed line at 1.`,
      }),
    ], dir);
  },
  report(data, runDir, args) {
    return coldStartRatios(data, runDir, args.extra.compare as string | undefined);
  },
};

/** One sentence per cold mode: what its time includes (README, figure subtitles). */
export const MODE_MEANINGS =
  'wasm cold = instantiate a module compiled once per run + call; cold-compile = compile (new bytes, no V8 cache) + instantiate + call; ' +
  'cold-process = spawn a new Node process + compile + instantiate + call; wasm-fork local-fork = fork a new instance from a snapshot of a warm parent + call; ' +
  'container cold = a new runc container (runc run) per call; containerd cold = `ctr run --rm` (containerd + runc v2 shim) per call; docker cold = create + attach + start + wait + remove through the Docker Engine API per call.';

/** The comparisons of the report and the figure: `spec` alone, or every container variant ÷ each WASM cold mode. */
export function coldStartComparisons(raw: FigureData['raw'], spec?: string): ComparisonRow[] {
  const pairs = spec
    ? [parseComparison(spec)]
    : CONTAINER_VARIANTS.flatMap((v) => WASM_COLD_MODES.map((m) => ({ numerator: { variant: v, mode: 'cold' }, denominator: { variant: 'wasm', mode: m } })));
  const rows = raw.filter((r) => r.metric === 'cold_start');
  const out: ComparisonRow[] = [];
  for (const p of ['gateway', 'direct']) for (const sides of pairs) out.push(...compareMedians({ rows, metric: 'cold_start', path: p, ...sides, rng: createRng(7) }));
  return out;
}

/** The container-vs-WASM ratio table, written next to summary.csv and printed. */
export function coldStartRatios(data: FigureData, runDir: string, spec?: string): string[] {
  const all = coldStartComparisons(data.raw, spec);
  const lines: string[] = [];
  for (const r of all) {
    if (!Number.isFinite(r.ratio)) continue;
    lines.push(`${r.path.padEnd(8)} ${r.function.padEnd(10)} ${`${r.numerator} ÷ ${r.denominator}`.padEnd(32)} ${r.ratio.toPrecision(3)}x (95% CI ${r.ratio_ci95_lo.toPrecision(3)}-${r.ratio_ci95_hi.toPrecision(3)}), medians ${r.median_numerator.toFixed(1)} vs ${r.median_denominator.toFixed(1)} us`);
  }
  if (all.length) writeComparisonCsv(path.join(runDir, 'cold-start-ratios.csv'), all);
  if (!lines.length) lines.push(`no cold-start ratio: one side of every comparison was not measured (see skipped rows in summary.csv)`);
  else lines.unshift(`cold-start ratios. ${MODE_MEANINGS}`);
  fs.writeFileSync(path.join(runDir, 'cold-start-ratios.txt'), lines.join('\n') + '\n', { flag: 'wx' });
  return lines;
}

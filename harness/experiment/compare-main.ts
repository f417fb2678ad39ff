// zx experiments/compare.mjs <A> <B>: run B against run A, cell by cell, into a new folder
// (compare.csv, compare.txt, figures/compare.{svg,png}). Reads results; measures nothing.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { resultsRoot } from '../paths.js';
import { createFreshDir, utcStamp } from '../results/run-dir.js';
import { CompareInputError, IGNORED_FLAGS, MACHINE_FIELDS, checkComparable, loadRunFolder, type RunFolder } from '../results/compare-check.js';
import { compareRuns, noteFailures, writeCompareCsv } from '../results/compare-runs.js';
import { formatCompareTable, formatSkips } from '../results/compare-text.js';
import { compareFigure } from '../figures/compare.js';
import { renderFigure } from '../figures/render.js';

const USAGE = `zx experiments/compare.mjs <folderA> <folderB> [flags]

Run B against run A: for every cell (experiment, variant, function, mode, path, metric, params,
unit) measured in both, the ratio of medians B/A with a seeded percentile-bootstrap 95% CI and
a verdict (faster/slower, smaller/larger, lower/higher when the CI excludes 1, else same; n/a
below 6 samples a side). Cells measured in one folder only are listed. Writes compare.csv,
compare.txt and figures/compare.{svg,png} into a new folder and prints where.

Refuses folders from different machines (${MACHINE_FIELDS.join(', ')}),
run with different flags (all but ${[...IGNORED_FLAGS].map((f) => `--${f}`).join(', ')}), of
different experiments, or not complete (status.json), naming each difference. The git commit
and the seed may differ and are printed.

flags:
  --out DIR          the folder to create (must not exist); default results/<time>-compare-<id>
  --force            compare despite the differences (they are recorded in compare.txt)
  --seed N           bootstrap seed (default 1)
  --resamples N      bootstrap resamples per cell (default 2000)
  --help             print this help
`;

class UsageError extends Error {}

function nonNegInt(name: string, v: string | undefined, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} wants an integer ≥ ${min}, got "${v}"`);
  return n;
}

function commitOf(f: RunFolder): string {
  const g = (f.env.git as { commit?: unknown } | undefined)?.commit;
  return typeof g === 'string' ? g.slice(0, 7) : 'unknown';
}

/** Number of distinct `run` values (repetitions) among a folder's rows; 1 when raw.csv has no such column. */
function runsIn(f: RunFolder): number {
  return new Set(f.raw.map((r) => (r as unknown as Record<string, unknown>).run).filter((x) => x !== undefined && x !== '')).size || 1;
}

export async function compareMain(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: { out: { type: 'string' }, force: { type: 'boolean' }, seed: { type: 'string' }, resamples: { type: 'string' }, help: { type: 'boolean' } },
      allowPositionals: true,
      strict: true,
    }));
  } catch (e) {
    return fail(`${(e as Error).message}\nvalid flags: --out, --force, --seed, --resamples, --help`);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  let seed: number, resamples: number;
  try {
    seed = nonNegInt('seed', values.seed as string | undefined, 1, 0);
    resamples = nonNegInt('resamples', values.resamples as string | undefined, 2000, 100);
  } catch (e) {
    return fail((e as Error).message);
  }
  if (positionals.length !== 2) return fail(`wants two results folders, A and B, got ${positionals.length}${positionals.length ? `: ${positionals.join(' ')}` : ''}`);

  let a: RunFolder, b: RunFolder;
  try {
    a = loadRunFolder(positionals[0] as string, 'A');
    b = loadRunFolder(positionals[1] as string, 'B');
  } catch (e) {
    if (e instanceof CompareInputError) return fail(e.message);
    throw e;
  }
  if (a.dir === b.dir) return fail(`A and B are the same folder: ${a.dir}`);
  const { refusals, info } = checkComparable(a, b);
  if (refusals.length && !values.force) {
    return fail(`refusing to compare A ${a.dir}\n  with B ${b.dir}:\n${refusals.map((r) => `  - ${r}`).join('\n')}`, '(--force compares them anyway)');
  }
  for (const r of refusals) process.stderr.write(`compare: --force: comparing despite: ${r}\n`);

  const rows = compareRuns(a.raw, b.raw, { seed, iterations: resamples });
  noteFailures(rows, a.summary, b.summary);
  const both = runsIn(a) > 1 && runsIn(b) > 1;
  const pooled = [a, b].filter((f) => runsIn(f) > 1).map((f) => (both
    ? `${f.side} holds ${runsIn(f)} runs: the CIs are Welch t intervals over the run medians of both folders`
    : `${f.side} holds ${runsIn(f)} runs, the other folder one: their samples are pooled per cell and the CI is a bootstrap over samples`));

  let dir: string;
  try {
    dir = createFreshDir(path.resolve(resultsRoot), `${utcStamp(new Date())}-compare`, values.out as string | undefined);
  } catch (e) {
    return fail((e as Error).message);
  }
  const header = [
    `A: ${a.dir}`,
    `B: ${b.dir}`,
    ...info,
    ...refusals.map((r) => `FORCED despite: ${r}`),
    ...pooled,
    `ratio = median(B) / median(A); 95% CI: percentile bootstrap, ${resamples} resamples, seed ${seed}; verdict only when the CI excludes 1`,
  ];
  const text = [...header, '', ...formatCompareTable(rows), ...prefixBlank(formatSkips(a.summary, b.summary))];
  writeCompareCsv(path.join(dir, 'compare.csv'), rows);
  fs.writeFileSync(path.join(dir, 'compare.txt'), text.join('\n') + '\n', { flag: 'wx' });
  const figDir = path.join(dir, 'figures');
  fs.mkdirSync(figDir);
  const onlyNotes = (['a only', 'b only'] as const).flatMap((side) => {
    const only = rows.filter((r) => r.in === side);
    return only.length ? [`Measured in ${side === 'a only' ? 'A' : 'B'} only, not drawn (${only.length}): ${only.map((r) => `${r.variant}/${r.function}/${r.mode} ${r.path} ${r.metric}`).join('; ')}`] : [];
  });
  const tooFew = rows.filter((r) => r.in === 'both' && r.change === 'n/a');
  const fig = compareFigure(rows, {
    aLabel: `${path.basename(a.dir)} (commit ${commitOf(a)})`,
    bLabel: `${path.basename(b.dir)} (commit ${commitOf(b)})`,
    iterations: resamples,
    seed,
    notes: [
      ...onlyNotes,
      ...(tooFew.length ? [`No verdict (n/a: too few samples or no finite CI): ${tooFew.length} cell(s), see compare.csv`] : []),
      ...refusals.map((r) => `Compared with --force despite: ${r}`),
      ...pooled,
    ],
  });
  const files = renderFigure(fig, figDir);

  process.stdout.write(text.join('\n') + '\n\n');
  process.stdout.write(`wrote: ${path.join(dir, 'compare.csv')}, compare.txt, ${path.relative(dir, files.png)}\n`);
  process.stdout.write(`results: ${dir}\n`);
  return 0;
}

const prefixBlank = (lines: string[]) => (lines.length ? ['', ...lines] : []);

function fail(message: string, hint = '(try --help)'): number {
  process.stderr.write(`compare: ${message}\n${hint}\n`);
  return 2;
}

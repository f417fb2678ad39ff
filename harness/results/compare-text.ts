// The comparison as text: short cell labels, the table of ratios, the cells only one run has,
// and the cells each run skipped.
import type { CellKey, CompareRow } from './compare-runs.js';
import type { SummaryRow } from './schema.js';

/** "a=1;b=x" → {a: "1", b: "x"} (the params column) */
function params(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const seg of text.split(';')) {
    const eq = seg.indexOf('=');
    if (seg.trim()) out[(eq < 0 ? seg : seg.slice(0, eq)).trim()] = eq < 0 ? '' : seg.slice(eq + 1).trim();
  }
  return out;
}

const unique = <T>(xs: readonly T[]) => [...new Set(xs)];

/** A short label per cell naming only what tells the cells apart (always variant/function/mode). */
export function cellLabels(rows: readonly CellKey[]): string[] {
  const varies = (f: (r: CellKey) => string) => new Set(rows.map(f)).size > 1;
  const parsed = rows.map((r) => params(r.params));
  const paramKeys = unique(parsed.flatMap((p) => Object.keys(p))).filter((k) => new Set(parsed.map((p) => p[k])).size > 1);
  const showExp = varies((r) => r.experiment);
  const showPath = varies((r) => r.path);
  const showMetric = varies((r) => r.metric);
  const labels = rows.map((r, i) => {
    const p = parsed[i] ?? {};
    return [
      ...(showExp ? [r.experiment] : []),
      [r.variant, r.function, r.mode].filter(Boolean).join('/'),
      ...(showPath ? [r.path] : []),
      ...(showMetric ? [r.metric] : []),
      ...paramKeys.filter((k) => k in p).map((k) => `${k}=${p[k]}`),
    ].join(' · ');
  });
  // cells that differ only in a column not shown (e.g. the unit) get every column
  const count = new Map<string, number>();
  for (const l of labels) count.set(l, (count.get(l) ?? 0) + 1);
  return labels.map((l, i) => {
    if ((count.get(l) ?? 0) < 2) return l;
    const r = rows[i] as CellKey;
    return [r.experiment, [r.variant, r.function, r.mode].join('/'), r.path, r.metric, r.params, r.unit].join(' · ');
  });
}

/** 3 decimals; more when that would print 1.000 for a bound that is not 1 (the verdict hangs on which side it is). */
export function fmtRatio(x: number): string {
  if (!Number.isFinite(x)) return '–';
  if (x >= 100 || x < 0.01) return x.toPrecision(2);
  if (x >= 10) return x.toFixed(1);
  for (let d = 3; d < 8; d++) if (x === 1 || x.toFixed(d) !== (1).toFixed(d)) return x.toFixed(d);
  return x.toPrecision(9);
}

const fmtValue = (x: number, unit: string) => (Number.isFinite(x) ? `${+x.toPrecision(4)} ${unit}`.trim() : '–');

function table(header: string[], body: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
}

/** The table of cells in both runs, then the cells in one run only (never dropped). */
export function formatCompareTable(rows: readonly CompareRow[]): string[] {
  const labels = cellLabels(rows);
  const both = rows.map((r, i) => ({ r, label: labels[i] as string })).filter((x) => x.r.in === 'both');
  const out = table(
    ['cell', 'n A', 'n B', 'median A', 'median B', 'B/A', '95% CI', 'verdict'],
    both.map(({ r, label }) => [
      label, String(r.n_a), String(r.n_b), fmtValue(r.median_a, r.unit), fmtValue(r.median_b, r.unit), fmtRatio(r.ratio),
      `[${fmtRatio(r.ratio_ci95_lo)}, ${fmtRatio(r.ratio_ci95_hi)}]`, r.verdict,
    ]),
  );
  if (both.length === 0) out.push('(no cell was measured in both runs)');
  for (const side of ['a only', 'b only'] as const) {
    const only = rows.map((r, i) => ({ r, label: labels[i] as string })).filter((x) => x.r.in === side);
    if (!only.length) continue;
    out.push('', `measured in ${side === 'a only' ? 'A' : 'B'} only (${only.length}): ` + only.map(({ r, label }) => `${label} (n=${side === 'a only' ? r.n_a : r.n_b})`).join('; '));
  }
  const noted = both.filter(({ r }) => r.note);
  if (noted.length) out.push('', 'notes:', ...noted.map(({ r, label }) => `  ${label}: ${r.note}`));
  return out;
}

/** Skipped cells (summary.csv) in both runs, in A only, in B only: a cell skipped in one run is why it is missing there. */
export function formatSkips(a: readonly SummaryRow[], b: readonly SummaryRow[]): string[] {
  const skips = (s: readonly SummaryRow[]) => new Map(s.filter((r) => r.status === 'skipped').map((r) => [`${r.experiment}: ${[r.variant, r.function, r.mode].filter(Boolean).join('/')}`, r.note]));
  const sa = skips(a);
  const sb = skips(b);
  const out: string[] = [];
  const list = (title: string, keys: string[], reasons: Map<string, string>) => {
    if (keys.length) out.push(`${title} (${keys.length}): ` + keys.map((k) => `${k} — ${reasons.get(k)}`).join('; '));
  };
  list('skipped in both', [...sa.keys()].filter((k) => sb.has(k)), sa);
  list('skipped in A only', [...sa.keys()].filter((k) => !sb.has(k)), sa);
  list('skipped in B only', [...sb.keys()].filter((k) => !sa.has(k)), sb);
  return out;
}

// Helpers shared by the figure builders: unit conversion, series labels, and the notes that
// list every cell not drawn (skipped, failed, too few samples) so nothing is silently missing.
import { MIN_N_MEDIAN_CI, NOISY_MEDIAN_CI_REL_HALF_WIDTH } from '../measure/stats.js';
import type { SummaryRow } from '../results/schema.js';
import { parseParams } from './params.js';
import { modeDecl } from '../platform/modes.js';

const TO_US: Record<string, number> = { ns: 1e-3, us: 1, 'µs': 1, 'μs': 1, ms: 1e3, s: 1e6 };
const TO_MIB: Record<string, number> = {
  B: 2 ** -20, bytes: 2 ** -20, byte: 2 ** -20, KiB: 2 ** -10, kB: 2 ** -10, KB: 2 ** -10, MiB: 1, MB: 1e6 / 2 ** 20, GiB: 1024,
};

/** Factor that converts `unit` to µs; throws on a unit that is not a time. */
export function microsPerUnit(unit: string): number {
  const f = TO_US[unit];
  if (f === undefined) throw new Error(`unit ${JSON.stringify(unit)} is not a time unit (ns, us, ms, s)`);
  return f;
}

/** Factor that converts `unit` to MiB ("kB" is read as /proc's KiB). */
export function mibPerUnit(unit: string): number {
  const f = TO_MIB[unit];
  if (f === undefined) throw new Error(`unit ${JSON.stringify(unit)} is not a memory unit (B, KiB, kB, MiB, GiB)`);
  return f;
}

/** Rows that belong in a figure of `metrics`: ok and measured. */
export function okRows(rows: readonly SummaryRow[], metrics: readonly string[]): SummaryRow[] {
  return rows.filter((r) => metrics.includes(r.metric) && r.status === 'ok' && r.n > 0);
}

/** A row scaled by `f` in every location statistic (for unit conversion). */
export function scaleRow(r: SummaryRow, f: number): SummaryRow {
  return {
    ...r,
    mean: r.mean * f,
    sd: r.sd * f,
    min: r.min * f,
    p50: r.p50 * f,
    p90: r.p90 * f,
    p99: r.p99 * f,
    p999: r.p999 * f,
    max: r.max * f,
    ci95_mean_lo: r.ci95_mean_lo * f,
    ci95_mean_hi: r.ci95_mean_hi * f,
    ci95_median_lo: r.ci95_median_lo * f,
    ci95_median_hi: r.ci95_median_hi * f,
  };
}

/** Keys of the params column whose values differ between rows: the only ones that tell cells apart. */
function varyingParamKeys(rows: readonly SummaryRow[]): string[] {
  const parsed = rows.map((r) => parseParams(r.params));
  const keys = unique(parsed.flatMap((p) => Object.keys(p)));
  return keys.filter((k) => new Set(parsed.map((p) => p[k])).size > 1);
}

/** "wasm/noop/warm (length=2 payload=4096)": spaces inside, since the notes join cells with '; '. */
function cellLabel(r: SummaryRow, keys: readonly string[]): string {
  const p = parseParams(r.params);
  const shown = keys.filter((k) => k in p).map((k) => `${k}=${p[k]}`);
  return [r.variant, r.function, r.mode].filter(Boolean).join('/') + (shown.length ? ` (${shown.join(' ')})` : '');
}

/**
 * Notes for a figure of `metrics`: skipped and failed cells (those with metric '' apply to every
 * metric), noisy cells, and cells too small for a median CI.
 */
/** cells listed by name in a noisy or a no-CI note; the rest are counted */
const MAX_NOISY_LISTED = 6;

export function cellNotes(rows: readonly SummaryRow[], metrics: readonly string[]): string[] {
  const notes: string[] = [];
  const relevant = rows.filter((r) => r.metric === '' || metrics.includes(r.metric));
  const keys = varyingParamKeys(relevant.filter((r) => r.params));
  const cell = (r: SummaryRow) => cellLabel(r, keys);
  const skipped = relevant.filter((r) => r.status === 'skipped');
  const failed = relevant.filter((r) => r.status === 'failed');
  if (skipped.length) notes.push(`Skipped (${skipped.length}): ` + skipped.map((r) => `${cell(r)} — ${r.note}`).join('; '));
  if (failed.length) notes.push(`Failed (${failed.length}, not drawn): ` + failed.map((r) => `${cell(r)} — ${r.note}`).join('; '));
  const ok = relevant.filter((r) => r.status === 'ok');
  const noisy = ok.filter((r) => r.noisy);
  // a figure is not the place for a long list: summary.csv flags every cell (column noisy)
  if (noisy.length) {
    const shown = noisy.slice(0, MAX_NOISY_LISTED).map(cell).join('; ');
    const more = noisy.length > MAX_NOISY_LISTED ? `; and ${noisy.length - MAX_NOISY_LISTED} more (column noisy of summary.csv)` : '';
    notes.push(`Noisy, ${noisy.length} of ${ok.length} cells (median's 95% CI wider than ±${NOISY_MEDIAN_CI_REL_HALF_WIDTH * 100}%): ${shown}${more}`);
  }
  const small = ok.filter((r) => r.n > 0 && Number.isNaN(r.ci95_median_lo));
  if (small.length) {
    const shown = small.slice(0, MAX_NOISY_LISTED).map((r) => `${cell(r)} n=${r.n}`).join('; ');
    const more = small.length > MAX_NOISY_LISTED ? `; and ${small.length - MAX_NOISY_LISTED} more (column n of summary.csv)` : '';
    notes.push(`No median CI (n < ${MIN_N_MEDIAN_CI}), ${small.length} cells: ${shown}${more}`);
  }
  return notes;
}

/** Unique values in first-appearance order. */
export function unique<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}

// A series keeps its colour in every figure: hue from the variant, shade from its mode's declared rank
// (platform/modes.ts; a mode may declare a colour of its own). Figures name no mode.
const VARIANT_HUES: Record<string, string[]> = {
  // darkest first: rank 0 (the coldest mode) takes the first shade
  wasm: ['#0b2a52', '#1d4f91', '#3b7dd8', '#8db8ee'],
  native: ['#5e2c00', '#a34d00', '#e8830c', '#f5be7a'],
  container: ['#4f0c0c', '#8e1b1b', '#d64545', '#ef9a9a'],
  ebpf: ['#0d3d20', '#1b6e3a', '#2fa35a', '#8fd4a6'],
};
const SPARE_HUES = [['#2b1450', '#4b2a85', '#7b52c7', '#b9a2e6'], ['#2e2e2e', '#5c5c5c', '#8c8c8c', '#c4c4c4'], ['#003a3a', '#006d6d', '#10a3a3', '#7fd6d6']];

function hash(s: string): number {
  let h = 0;
  for (const c of s) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h;
}

/** "variant · mode", the mode shown by its declared label. */
export function seriesLabel(r: Pick<SummaryRow, 'variant' | 'mode'>): string {
  return r.mode ? `${r.variant} · ${modeDecl(r.mode)?.label ?? r.mode}` : r.variant;
}

/** The colour of a "variant · mode" series label (the mode by its id or its label). */
export function seriesColor(series: string): string {
  const [variant = '', mode = ''] = series.split(' · ');
  const decl = modeDecl(mode);
  if (decl?.colour) return decl.colour;
  const hues = VARIANT_HUES[variant] ?? SPARE_HUES[hash(variant) % SPARE_HUES.length]!;
  const i = decl ? Math.max(0, Math.min(hues.length - 1, Math.round(decl.rank))) : 2;
  return hues[i]!;
}

/** Series in a fixed order: by variant name, then by the modes' declared ranks (undeclared modes last, by name). */
export function sortSeries(series: readonly string[]): string[] {
  const key = (s: string) => {
    const [v = '', m = ''] = s.split(' · ');
    return [v, modeDecl(m)?.rank ?? Infinity, m] as const;
  };
  return [...series].sort((a, b) => {
    const [va, ra, ma] = key(a);
    const [vb, rb, mb] = key(b);
    if (va !== vb) return va < vb ? -1 : 1;
    if (ra !== rb) return ra - rb;
    return ma < mb ? -1 : ma > mb ? 1 : 0;
  });
}

/** Plot colour scale options for these series. */
export function seriesColors(series: readonly string[]): { domain: string[]; range: string[] } {
  const domain = sortSeries(series);
  return { domain, range: domain.map(seriesColor) };
}

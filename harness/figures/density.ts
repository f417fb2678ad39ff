// Density figures, from summary.csv rows of the density experiment:
//   memory-per-instance: (fixed + N × marginal) / N against N, per variant, one panel per function
//     (cgroup usage solid, PSS dashed; MiB, log y), so a shared holder's cost is seen amortised;
//   fit-in-budget: instances predicted to fit vs instances that really started and stayed alive;
//   daemon-share: for the daemon variants (docker, containerd), the daemon's share per instance against the
//     whole side per instance, so the daemon's part of the cost is seen;
//   memlock-per-instance: eBPF's kernel memory (memlock of programs and maps), a different quantity.
import * as Plot from '@observablehq/plot';
import type { SummaryRow } from '../results/schema.js';
import type { Figure } from './render.js';
import { cellNotes, mibPerUnit, okRows, scaleRow, seriesColors, unique } from './common.js';
import { parseParams } from './params.js';

/** Axis ticks of a MiB axis: "512 KiB", "2 MiB" (the SI "m" of d3's ~s would read as milli). */
export function mibTick(v: number): string {
  if (v >= 1024) return `${+(v / 1024).toPrecision(3)} GiB`;
  if (v >= 1) return `${+v.toPrecision(3)} MiB`;
  if (v * 1024 >= 1) return `${+(v * 1024).toPrecision(3)} KiB`;
  return `${+(v * 2 ** 20).toPrecision(3)} B`;
}

const LABELS: Record<string, string> = {
  cgroup_per_instance: 'cgroup usage',
  pss_per_instance: 'PSS',
  rss_per_instance: 'RSS',
  memlock_per_instance: 'memlock',
  daemon_share_per_instance: 'daemon share',
};

interface Point extends SummaryRow {
  n_instances: number;
  series: string;
  measure: string;
}

function perN(rows: readonly SummaryRow[], metrics: readonly string[]): Point[] {
  return okRows(rows, metrics)
    .map((r) => ({
      ...scaleRow(r, mibPerUnit(r.unit)),
      n_instances: Number(parseParams(r.params)['n']),
      series: r.variant,
      measure: LABELS[r.metric] ?? r.metric,
    }))
    .filter((p) => Number.isFinite(p.n_instances))
    .sort((a, b) => a.n_instances - b.n_instances);
}

function perNFigure(rows: readonly SummaryRow[], metrics: string[], o: { name: string; title: string; subtitle: string; y: string }): Figure {
  const data = perN(rows, metrics);
  const functions = unique(data.map((d) => d.function));
  // in the order asked for: the first is drawn solid, whatever order the rows come in
  const measures = metrics.map((m) => LABELS[m] ?? m).filter((m) => data.some((d) => d.measure === m));
  const notes = cellNotes(rows, metrics);
  if (data.length === 0) notes.unshift('No measured cells.');
  const dash = (m: string) => (measures.indexOf(m) === 0 ? undefined : '4,3');
  return {
    name: o.name,
    title: o.title,
    subtitle: o.subtitle,
    notes,
    legendLabel: 'variant',
    plot: {
      height: 320,
      marginLeft: 70,
      marginRight: 20,
      x: { type: 'log', base: 2, label: 'N idle instances (log₂) →', grid: true, tickFormat: (v: number) => (Number.isInteger(v) ? String(v) : '') },
      y: { type: 'log', label: `↑ ${o.y} (log scale)`, grid: true, tickFormat: mibTick },
      fx: { label: null, domain: functions },
      color: seriesColors(unique(data.map((d) => d.series))),
      marks: [
        Plot.frame({ stroke: '#ddd' }),
        ...measures.flatMap((m) => {
          const mine = data.filter((d) => d.measure === m);
          return [
            Plot.line(mine, { fx: 'function', x: 'n_instances', y: 'p50', z: 'series', stroke: 'series', strokeDasharray: dash(m) }),
            Plot.ruleX(mine.filter((d) => Number.isFinite(d.ci95_median_lo)), { fx: 'function', x: 'n_instances', y1: 'ci95_median_lo', y2: 'ci95_median_hi', stroke: 'series', strokeOpacity: 0.5 }),
            Plot.dot(mine, { fx: 'function', x: 'n_instances', y: 'p50', fill: 'series', r: 2.5, symbol: measures.indexOf(m) === 0 ? 'circle' : 'square' }),
          ];
        }),
        Plot.text(data.filter((d) => d.n_instances === Math.max(...data.filter((e) => e.series === d.series && e.function === d.function && e.measure === d.measure).map((e) => e.n_instances))), {
          fx: 'function', x: 'n_instances', y: 'p50', text: (d: Point) => `${d.series}${measures.length > 1 ? ` ${d.measure}` : ''}`, dx: -4, dy: -7, textAnchor: 'end', fontSize: 9, fill: '#444',
        }),
      ],
    },
  };
}

/** Per-instance cost (fixed + N × marginal) / N against N: cgroup usage (solid) and PSS (dashed). */
export function memoryFigure(rows: readonly SummaryRow[]): Figure {
  const measured = unique(okRows(rows, ['pss_per_instance']).map((r) => r.variant));
  return perNFigure(rows, ['cgroup_per_instance', 'pss_per_instance'], {
    name: 'memory-per-instance',
    title: 'Memory per idle instance, like for like',
    subtitle:
      'Each side\'s whole processes in a memory cgroup of its own (WASM: the executor holding the instances; native: --serve processes; container: its processes + runc run); ' +
      'docker/containerd: each container\'s own cgroup + its shim (and ctr client) by PSS + the daemon once, by PSS, as the daemon\'s containers cannot be placed in the cell; ' +
      `read after N = 1 … k instances and divided by N: (fixed + N × marginal) / N. Solid: cgroup usage (kernel memory included); dashed: PSS summed over the processes${measured.length ? '' : ' (none measured)'}. Median over sequences, 95% CI where ≥ 6.`,
    y: 'memory per instance',
  });
}

/** Daemon variants: the whole side ÷ N (solid) against the daemon's PSS ÷ N (dashed), so its share is seen. */
export function daemonFigure(rows: readonly SummaryRow[]): Figure {
  const daemonVariants = new Set(okRows(rows, ['daemon_share_per_instance']).map((r) => r.variant));
  const mine = rows.filter((r) => daemonVariants.has(r.variant) || (r.metric === 'daemon_share_per_instance' && r.status !== 'ok'));
  return perNFigure(mine, ['cgroup_per_instance', 'daemon_share_per_instance'], {
    name: 'daemon-share',
    title: 'Daemon variants: the daemon\'s share of each idle instance',
    subtitle:
      'Solid: the whole side ÷ N (daemon + every container\'s own cgroup + its shim and client by PSS). Dashed: the daemon\'s part, PSS of dockerd + its containerd (docker) ' +
      'or of containerd ÷ N. The daemon\'s own memory moves with N (and with its GC); it is shared with any other harness process using it at the time.',
    y: 'memory per instance',
  });
}

/** eBPF: memlock of the loaded programs and their maps per instance (kernel memory; not a process). */
export function memlockFigure(rows: readonly SummaryRow[]): Figure {
  return perNFigure(rows, ['memlock_per_instance'], {
    name: 'memlock-per-instance',
    title: 'eBPF: kernel memory per loaded program (memlock)',
    subtitle: 'Sum of memlock in /proc/<pid>/fdinfo of each program and its maps, divided by N. A different quantity from the process memory of the other figure: not comparable, not in the budget.',
    y: 'memlock per instance',
  });
}

interface FitPoint {
  variant: string;
  function: string;
  kind: 'predicted' | 'tried';
  value: number;
  label: string;
}

/** Instances predicted to fit the budget (open) against the instances really started and alive (filled). */
export function budgetFigure(rows: readonly SummaryRow[]): Figure {
  const metrics = ['fit_predicted', 'fit_tried'];
  const ok = okRows(rows, metrics);
  const pts: FitPoint[] = ok.map((r) => {
    const p = parseParams(r.params);
    const tried = r.metric === 'fit_tried';
    const v = Math.round(r.p50);
    return { variant: r.variant, function: r.function, kind: tried ? 'tried' : 'predicted', value: v, label: tried ? `${v} (${p['outcome'] ?? '?'})` : `${v}` };
  });
  const budgets = unique(ok.map((r) => parseParams(r.params)['budget'] ?? '')).filter(Boolean);
  const functions = unique(pts.map((d) => d.function));
  const variants = unique(pts.map((d) => d.variant));
  const notes = cellNotes(rows, metrics);
  if (pts.length === 0) notes.unshift('No measured cells.');
  const short = ok.filter((r) => r.metric === 'fit_tried' && parseParams(r.params)['outcome'] !== 'reached');
  if (short.length) {
    notes.unshift(
      `Fell short of the prediction (${short.length}): ` +
        short.map((r) => `${r.variant}/${r.function} — ${parseParams(r.params)['outcome']}, ${Math.round(r.p50)} alive`).join('; ') +
        ' (the error text and the N where it stopped: env.json notes "density fit", density.txt).',
    );
  }
  // 0 instances cannot sit on a log axis: drawn at 0.5, labelled 0
  const plotted = pts.map((d) => ({ ...d, x: Math.max(d.value, 0.5) }));
  return {
    name: 'fit-in-budget',
    title: 'Instances in the memory budget: predicted and tried',
    subtitle:
      `${budgets.length ? `Budget: ${budgets.join(', ')}. ` : ''}Open: ⌊(budget − fixed) ÷ marginal⌋ from the N = 1 and N = k cgroup readings. ` +
      'Filled: instances that really started, answered and were alive, in a cgroup limited to the budget (docker/containerd: their own reading checked against the budget after each start, ' +
      'as no kernel limit binds a daemon; outcome over-budget) (label: how the trial ended). Log scale; 0 drawn at ½.',
    notes,
    legendLabel: 'variant',
    plot: {
      height: Math.max(140, functions.length * variants.length * 30 + 80),
      marginLeft: 110,
      marginRight: 130,
      x: { type: 'log', label: 'instances (log scale) →', grid: true, tickFormat: '~s' },
      y: { label: null, domain: variants },
      fy: { label: null, domain: functions },
      color: seriesColors(variants),
      marks: [
        Plot.frame({ stroke: '#ddd' }),
        Plot.dot(plotted.filter((d) => d.kind === 'predicted'), { fy: 'function', y: 'variant', x: 'x', stroke: 'variant', r: 6, strokeWidth: 1.5 }),
        Plot.dot(plotted.filter((d) => d.kind === 'tried'), { fy: 'function', y: 'variant', x: 'x', fill: 'variant', r: 3.5 }),
        Plot.text(plotted.filter((d) => d.kind === 'predicted'), { fy: 'function', y: 'variant', x: 'x', text: (d: FitPoint) => `predicted ${d.label}`, dy: -10, fontSize: 9, fill: '#555' }),
        Plot.text(plotted.filter((d) => d.kind === 'tried'), { fy: 'function', y: 'variant', x: 'x', text: (d: FitPoint) => `tried ${d.label}`, dy: 11, fontSize: 9, fill: '#222' }),
      ],
    },
  };
}

/** The density figures. */
export function densityFigures(rows: readonly SummaryRow[]): Figure[] {
  return [memoryFigure(rows), daemonFigure(rows), budgetFigure(rows), memlockFigure(rows)];
}

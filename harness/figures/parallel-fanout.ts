// The fan-out figure, from summary rows only: job completion time against N invocations per
// substrate and pool size, with the straggler (the slowest invocation) drawn beside it.
import * as Plot from '@observablehq/plot';
import type { SummaryRow } from '../results/schema.js';
import type { Figure } from './render.js';
import { cellNotes, okRows, seriesLabel, unique } from './common.js';
// substrates are named "variant · mode label" from the variants' own declarations: the figure names none
import { parseParams } from './params.js';


export interface FanoutPoint {
  substrate: string;
  pool: number;
  n: number;
  jobUs: number;
  stragglerUs: number;
}

export function fanoutPoints(rows: readonly SummaryRow[]): FanoutPoint[] {
  const jobs = okRows(rows, ['job_time']).filter((r) => r.path === 'gateway-fanout');
  return jobs
    .map((r) => {
      const p = parseParams(r.params);
      const st = rows.find((x) => x.metric === 'straggler' && x.status === 'ok' && x.variant === r.variant && x.mode === r.mode && x.params === r.params);
      return { substrate: seriesLabel(r), pool: Number(p.pool), n: Number(p.n), jobUs: r.p50, stragglerUs: st?.p50 ?? NaN };
    })
    .sort((a, b) => a.substrate.localeCompare(b.substrate) || a.pool - b.pool || a.n - b.n);
}

export function fanoutFigure(rows: readonly SummaryRow[]): Figure {
  const pts = fanoutPoints(rows).map((p) => ({ ...p, series: `${p.substrate} · pool ${p.pool}`, ms: p.jobUs / 1000, stragglerMs: p.stragglerUs / 1000 }));
  const notes = [...cellNotes(rows.filter((r) => r.path === 'gateway-fanout' || r.metric === ''), ['job_time', 'straggler', 'invocation_time']), 'Solid: the job (first send to the reduced, verified counts), median of the jobs. Hollow: the straggler, the slowest invocation of each job (median over jobs). The gap between them is the fan-in and the queueing of the others behind the pool.'];
  if (!pts.length) notes.unshift('No measured cells.');
  return {
    name: 'parallel-fanout',
    title: 'Fan-out/fan-in: job completion time against invocations',
    subtitle: 'A byte histogram of a generated corpus split into N invocations sent at once through the gateway, P executors per variant (pool), reduced at the end. One panel per substrate; log-log.',
    notes,
    legendLabel: 'pool size',
    plot: {
      height: 420,
      fx: { label: null },
      x: { type: 'log', label: 'invocations N (log) →', grid: true },
      y: { type: 'log', label: '↑ ms (median, log)', grid: true },
      color: { type: 'ordinal', scheme: 'tableau10', domain: unique(pts.map((p) => `pool ${p.pool}`)) },
      marks: [
        Plot.frame({ stroke: '#ddd' }),
        Plot.line(pts, { fx: 'substrate', x: 'n', y: 'ms', stroke: (p: { pool: number }) => `pool ${p.pool}`, z: 'series' }),
        Plot.dot(pts, { fx: 'substrate', x: 'n', y: 'ms', fill: (p: { pool: number }) => `pool ${p.pool}`, r: 3 }),
        Plot.dot(pts.filter((p) => Number.isFinite(p.stragglerMs)), { fx: 'substrate', x: 'n', y: 'stragglerMs', stroke: (p: { pool: number }) => `pool ${p.pool}`, r: 3, symbol: 'circle' }),
      ],
    },
  };
}

// The fork experiment's printed table: per method and state size, median fork latency and first
// response; the MITOSIS figure it is set beside is published, not measured here.
import type { SummaryRow } from '../results/schema.js';
import { okRows } from '../figures/common.js';
import { parseParams } from '../figures/params.js';
import { seriesOf } from '../figures/fork.js';

export function forkReport(rows: readonly SummaryRow[]): string[] {
  const lines: string[] = [];
  const first = okRows(rows, ['first_response']);
  for (const r of first.sort((a, b) => seriesOf(a).localeCompare(seriesOf(b)) || Number(parseParams(a.params).state_bytes) - Number(parseParams(b.params).state_bytes))) {
    const mib = Number(parseParams(r.params).state_bytes) / 2 ** 20;
    const fork = rows.find((x) => x.metric === 'fork_latency' && x.status === 'ok' && x.variant === r.variant && x.mode === r.mode && x.path === r.path && x.params === r.params);
    const moved = rows.find((x) => x.metric === 'bytes_moved' && x.status === 'ok' && x.variant === r.variant && x.mode === r.mode && x.path === r.path && x.params === r.params);
    lines.push(`${seriesOf(r).padEnd(36)} ${String(mib).padStart(5)} MiB  first response p50 ${(r.p50 / 1000).toFixed(3)} ms (95% CI ${(r.ci95_median_lo / 1000).toFixed(3)}-${(r.ci95_median_hi / 1000).toFixed(3)})${fork ? `, fork ${(fork.p50 / 1000).toFixed(3)} ms` : ''}${moved ? `, moved ${(moved.p50 / 2 ** 20).toFixed(2)} MiB` : ''}, n=${r.n}`);
  }
  // remote forks: where the child's time went (child_<phase> rows, medians), and what is outside the child's clock
  for (const r of first.filter((x) => x.path !== 'local')) {
    const same = (metric: string) => rows.find((x) => x.metric === metric && x.status === 'ok' && x.variant === r.variant && x.mode === r.mode && x.path === r.path && x.params === r.params);
    const phases = rows.filter((x) => x.metric.startsWith('child_') && x.unit === 'us' && x.status === 'ok' && x.variant === r.variant && x.mode === r.mode && x.path === r.path && x.params === r.params);
    const child = same('first_response_child');
    if (!phases.length || !child) continue;
    const mib = Number(parseParams(r.params).state_bytes) / 2 ** 20;
    const parts = phases.map((x) => `${x.metric.slice('child_'.length)} ${(x.p50 / 1000).toFixed(3)}`).join(', ');
    lines.push(`  ${seriesOf(r)} ${mib} MiB, child's medians (ms): ${parts}; first response in the child ${(child.p50 / 1000).toFixed(3)}, at the caller ${(r.p50 / 1000).toFixed(3)}`);
  }
  for (const r of okRows(rows, ['forks_per_second'])) lines.push(`forks per second, ${parseParams(r.params).children} child node(s), ${Number(parseParams(r.params).state_bytes) / 2 ** 20} MiB: ${r.p50.toFixed(0)}/s`);
  if (lines.length) lines.push('published, not measured here: MITOSIS remote fork_resume 2.9 ms at 1 MiB (RDMA), >10,000 forks/s from one parent; Faasm restore ~0.5 ms');
  return lines;
}

// The rdma-ebpf report from raw rows alone: proof lines (posted vs seen by eBPF), the loss phase's
// accounting, and the overhead ratio with its bootstrap CI. Written to rdma-ebpf-report.txt.
import fs from 'node:fs';
import path from 'node:path';
import type { FigureData } from '../experiment/context.js';
import { createRng } from '../measure/random.js';
import { median, quantile, runsRatioCI95 } from '../measure/stats.js';
import { compareMedians, writeComparisonCsv } from '../results/comparison.js';
import type { RawRow } from '../results/schema.js';
import { VARIANT } from './rdma-ebpf-rows.js';

const param = (r: RawRow, k: string) => new RegExp(`(?:^|;)${k}=([^;]*)`).exec(r.params)?.[1] ?? '';
const without = (params: string, ...keys: string[]) => params.split(';').filter((kv) => !keys.includes(kv.split('=')[0]!)).join(';');

/** [numerator arm, denominator arm, what the ratio isolates] */
const OVERHEAD_PAIRS = [
  ['generic', 'detached', 'telemetry, generic XDP'],
  ['native', 'detached', 'telemetry, native XDP'],
  ['generic', 'generic-pass', 'the telemetry program alone, generic'],
  ['native', 'native-pass', 'the telemetry program alone, native'],
  ['native-pass', 'detached', 'a native XDP hook on the veth, doing nothing'],
] as const;

export function rdmaEbpfReport(data: FigureData, runDir: string): string[] {
  const lines: string[] = [];
  const rows = data.raw.filter((r) => r.variant === VARIANT);
  const one = (fn: string, metric: string, pred: (r: RawRow) => boolean) => rows.find((r) => r.function === fn && r.metric === metric && pred(r))?.value;

  // proof: per run, direction and class
  const proofKeys = [...new Set(rows.filter((r) => r.metric === 'posted_ops' && param(r, 'phase') === 'proof').map((r) => `${r.function}|${r.params}`))];
  for (const key of proofKeys) {
    const [fn, params] = key.split('|') as [string, string];
    const at = (m: string) => one(fn, m, (r) => r.params === params) ?? NaN;
    const [po, pb, eo, eb, miss] = [at('posted_ops'), at('posted_bytes'), at('ebpf_ops'), at('ebpf_bytes'), at('ebpf_psn_missing')];
    const eq = po === eo && pb === eb;
    const ack = rows.find((r) => r.function === fn && r.metric === 'ack_time_mean' && r.params.startsWith(params));
    lines.push(
      `proof   ${fn} ${param({ params } as RawRow, 'dir')} ${param({ params } as RawRow, 'class')} (${param({ params } as RawRow, 'iters')} x ${param({ params } as RawRow, 'size')} B): ` +
        `posted ${po} ops, ${pb} B; eBPF per-QP ${eo} ops, ${eb} B (${eq ? 'equal' : 'DIFFER'}); PSN gaps ${miss}${ack ? `; request-to-ACK ${ack.value.toFixed(1)} us mean` : ''}`,
    );
  }

  // loss: each lossy run against its lossless twin
  for (const fn of [...new Set(rows.filter((r) => param(r, 'phase') === 'loss').map((r) => r.function))]) {
    const lossy = (m: string) => one(fn, m, (r) => param(r, 'phase') === 'loss') ?? NaN;
    const base = (m: string) => one(fn, m, (r) => param(r, 'phase') === 'loss-baseline') ?? NaN;
    const every = one(fn, 'dropped', (r) => param(r, 'phase') === 'loss');
    const everyN = rows.find((r) => r.function === fn && param(r, 'phase') === 'loss' && r.metric === 'dropped')?.params;
    const n = everyN ? param({ params: everyN } as RawRow, 'every_n') : '?';
    const iters = everyN ? Number(param({ params: everyN } as RawRow, 'iters')) : NaN;
    const dropped = every ?? NaN, missing = lossy('psn_missing'), naks = lossy('naks_psn_seq'), gaps = lossy('gap_events');
    lines.push(
      `loss    ${fn} every ${n}th request to the server: dropped ${dropped}; PSNs missing ${missing} in ${gaps} gaps (${missing === dropped ? 'equal' : `${missing - dropped >= 0 ? '+' : ''}${missing - dropped} vs dropped`}); ` +
        `NAKs (PSN sequence error) ${naks} (${naks === gaps ? 'one per gap' : 'differ from gaps'}); go-back-N rewinds ${lossy('psn_rewinds')}; ` +
        `completed: client exit ${lossy('client_exit')}; lossless twin: ${base('psn_missing')} PSNs missing, ${base('naks_psn_seq')} NAKs` +
        (missing < dropped ? ` (a drop with no later packet in flight shows no gap: the requester's timeout resends it)` : ''),
    );
    const sel = lossy('loss_selected'), postedPkts = lossy('posted_pkts'), retx = lossy('retransmitted_to_server');
    lines.push(
      `proof   ${fn} loss accounting: packets the loss program saw beyond those posted ${sel - postedPkts} = dropped ${dropped} + retransmissions the telemetry saw ${retx} ` +
        `(${sel - postedPkts === dropped + retx ? 'equal' : 'DIFFER'}); every dropped PSN arrived later (${lossy('ops_completed') === iters ? 'equal' : 'DIFFER'}: ${lossy('ops_completed')} of ${iters})`,
    );
    const bw = (ph: string) => one(fn, 'write_bw', (r) => param(r, 'phase') === ph);
    if (bw('loss') !== undefined && bw('loss-baseline') !== undefined) lines.push(`loss    ${fn}: ${bw('loss')!.toFixed(2)} MB/s with loss vs ${bw('loss-baseline')!.toFixed(2)} MB/s lossless (${((bw('loss')! / bw('loss-baseline')! - 1) * 100).toFixed(1)}%)`);
    const lat = (ph: string) => rows.filter((r) => r.function === fn && /_latency$/.test(r.metric) && param(r, 'phase') === ph).map((r) => r.value);
    const [l, b] = [lat('loss'), lat('loss-baseline')];
    if (l.length && b.length) {
      lines.push(`loss    ${fn}: median ${median(l).toFixed(1)} us with loss vs ${median(b).toFixed(1)} us lossless; p99 ${quantile(l, 0.99).toFixed(0)} vs ${quantile(b, 0.99).toFixed(0)} us; max ${Math.max(...l).toFixed(0)} vs ${Math.max(...b).toFixed(0)} us (a drop with nothing behind it costs a retransmission timeout)`);
    }
  }

  // overhead: each arm against detached, the same cells otherwise
  const over = rows
    .filter((r) => param(r, 'phase') === 'overhead' && /_latency$/.test(r.metric) && !r.metric.endsWith('_block_median'))
    .map((r) => ({ ...r, variant: `${VARIANT}+${param(r, 'arm')}`, params: without(r.params, 'arm', 'phase') }));
  const mode = over[0]?.mode ?? '';
  const cmp = [];
  for (const [arm, vs, what] of OVERHEAD_PAIRS) {
    for (const c of compareMedians({ rows: over, metric: over[0]?.metric ?? 'write_latency', path: 'rdma', numerator: { variant: `${VARIANT}+${arm}`, mode }, denominator: { variant: `${VARIANT}+${vs}`, mode }, rng: createRng(17) })) {
      if (!Number.isFinite(c.ratio)) continue;
      cmp.push(c);
      const blocks = (a: string) => rows.filter((r) => r.function === c.function && param(r, 'phase') === 'overhead' && param(r, 'arm') === a && r.metric.endsWith('_block_median')).map((r) => r.value);
      const [nb, db] = [blocks(arm), blocks(vs)];
      const w = runsRatioCI95(nb, db);
      const ci = Number.isFinite(w.ratio)
        ? `ratio of block medians ${w.ratio.toFixed(3)} (95% CI ${w.lo.toFixed(3)}..${w.hi.toFixed(3)} over ${nb.length}/${db.length} blocks)`
        : `CI needs at least 2 blocks a side (${nb.length}/${db.length})`;
      lines.push(
        `overhead ${c.function} ${param({ params: c.params } as RawRow, 'size')} B, ${arm} vs ${vs} (${what}): ${c.median_numerator.toFixed(2)} vs ${c.median_denominator.toFixed(2)} us median; ${ci}; pooled samples' bootstrap ${c.ratio_ci95_lo.toFixed(3)}..${c.ratio_ci95_hi.toFixed(3)} (too narrow when blocks drift)`,
      );
    }
  }
  if (cmp.length) writeComparisonCsv(path.join(runDir, 'rdma-ebpf-overhead.csv'), cmp, { overwrite: true });
  // kernel: median time of each step of one operation's path through rxe
  for (const fn of [...new Set(rows.filter((r) => r.metric === 'stage_time').map((r) => r.function))]) {
    const st = rows.filter((r) => r.function === fn && r.metric === 'stage_time');
    const steps = [...new Set(st.map((r) => param(r, 'step')))];
    const total = rows.filter((r) => r.function === fn && r.metric === 'kernel_path_time').map((r) => r.value);
    lines.push(`kernel  ${fn} (one in flight, ${total.length} operations): post to completion ${median(total).toFixed(1)} us median; ` + steps.map((s) => `${s} ${median(st.filter((r) => param(r, 'step') === s).map((r) => r.value)).toFixed(1)}`).join(', ') + ' us');
  }
  const malformed = rows.filter((r) => r.metric === 'malformed').reduce((s, r) => s + r.value, 0);
  if (rows.length) lines.push(`malformed RoCEv2 packets seen in all phases: ${malformed}`);
  for (const s of data.skips.filter((s) => s.experiment === 'rdma-ebpf')) lines.push(`skipped ${s.variant}: ${s.reason}`);
  if (!lines.length) lines.push('rdma-ebpf: nothing measured');
  lines.push('(SoftRoCE in a QEMU guest under software emulation: times are emulated, compare them only with each other)');
  fs.writeFileSync(path.join(runDir, 'rdma-ebpf-report.txt'), lines.join('\n') + '\n');
  return lines;
}

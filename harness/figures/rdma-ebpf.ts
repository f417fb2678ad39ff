// The rdma-ebpf experiment's figures: where one RDMA write's and one send's time goes inside
// SoftRoCE (kprobe stamps, median per step, stacked), and write latency with the XDP programs
// attached against detached (median with its 95% CI per arm).
import * as Plot from '@observablehq/plot';
import type { SummaryRow } from '../results/schema.js';
import type { Figure } from './render.js';
import { cellNotes, okRows, unique } from './common.js';

const param = (r: SummaryRow, k: string) => new RegExp(`(?:^|;)${k}=([^;]*)`).exec(r.params)?.[1] ?? '';
const EMULATED = 'SoftRoCE in a QEMU guest under software emulation: compare these times only with each other.';

const OPS: Record<string, string> = { write_bw: 'RDMA WRITE (64 B)', send_bw: 'SEND (64 B)' };

export function stagesFigure(rows: readonly SummaryRow[]): Figure {
  const st = okRows(rows, ['stage_time']).filter((r) => r.experiment === 'rdma-ebpf');
  const order = unique(st.map((r) => param(r, 'step')));
  let points = st.map((r) => ({ op: OPS[r.function] ?? r.function, step: param(r, 'step'), us: r.p50, idx: order.indexOf(param(r, 'step')) }));
  points = points.sort((a, b) => a.idx - b.idx);
  const notes = cellNotes(rows.filter((r) => r.experiment === 'rdma-ebpf'), ['stage_time']);
  if (!points.length) notes.unshift('No kernel stamps: the kprobes could not attach (see the skipped cells) or the guest did not run.');
  notes.push('Each bar segment is the median of that step over the operations; the sum of medians is not the median of the sum.', EMULATED);
  return {
    name: 'rdma-ebpf-stages',
    title: 'Where one RDMA operation goes inside SoftRoCE',
    subtitle: 'One operation in flight (perftest bw, tx depth 1, every WR signalled); kprobes on rxe stamp post, requester, xmit, UDP receive, rxe_rcv, responder, completer and CQ post on both ends; the wire is the veth between them.',
    notes,
    legendLabel: 'step',
    plot: {
      height: 200,
      marginLeft: 130,
      x: { label: 'median time per step, stacked (µs) →', grid: true },
      y: { label: null },
      color: { domain: order, scheme: 'tableau10' },
      marks: [Plot.barX(points, { x: 'us', y: 'op', fill: 'step', order: order, title: (d: { step: string; us: number }) => `${d.step}: ${d.us.toFixed(1)} µs` }), Plot.ruleX([0])],
    },
  };
}

const ARMS: Record<string, string> = {
  detached: 'detached',
  generic: 'telemetry, generic XDP',
  'generic-pass': 'do-nothing, generic XDP',
  native: 'telemetry, native XDP',
  'native-pass': 'do-nothing, native XDP',
};

export function overheadFigure(rows: readonly SummaryRow[]): Figure {
  const lat = okRows(rows, ['write_latency', 'send_latency']).filter((r) => r.experiment === 'rdma-ebpf' && param(r, 'phase') === 'overhead');
  const test = unique(lat.map((r) => `ib_${r.function}`)).join(', ') || 'perftest';
  const points = lat.map((r) => ({ arm: ARMS[param(r, 'arm')] ?? param(r, 'arm'), p50: r.p50, lo: r.ci95_median_lo, hi: r.ci95_median_hi, p99: r.p99 }));
  const notes = cellNotes(rows.filter((r) => r.experiment === 'rdma-ebpf' && param(r, 'phase') === 'overhead'), ['write_latency', 'send_latency']);
  if (!points.length) notes.unshift('No overhead blocks were measured.');
  notes.push(EMULATED);
  return {
    name: 'rdma-ebpf-overhead',
    title: 'RDMA latency with the RoCEv2 XDP programs attached and detached',
    subtitle: `${test} 64 B between two rxe devices over one veth; blocks of each arm in shuffled rounds; dot: median with its 95% CI (bar), tick: p99. The do-nothing program separates the XDP hook from the telemetry.`,
    notes,
    legend: false,
    plot: {
      height: 240,
      marginLeft: 170,
      x: { type: 'log', label: 'latency (µs, log) →', grid: true },
      y: { label: null, domain: Object.values(ARMS).filter((a) => points.some((p) => p.arm === a)) },
      marks: [
        Plot.ruleY(points, { y: 'arm', x1: 'lo', x2: 'hi', strokeWidth: 3, stroke: '#1f6fb4' }),
        Plot.dot(points, { y: 'arm', x: 'p50', fill: '#1f6fb4', r: 4 }),
        Plot.tickX(points, { y: 'arm', x: 'p99', stroke: '#888' }),
      ],
    },
  };
}

export function rdmaEbpfFigures(rows: readonly SummaryRow[]): Figure[] {
  return [stagesFigure(rows), overheadFigure(rows)];
}

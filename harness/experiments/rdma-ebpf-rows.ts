// What perftest posted, per direction, against what the eBPF counters saw; and the guest's phases
// turned into raw rows. Pure functions (the tests feed them hand-made phases).
import type { RawRow } from '../results/schema.js';
import type { QpCounters, RoceClass } from '../bpf/roce-layout.js';
import type { GuestPhase } from './rdma-ebpf-guest.js';
import type { PerftestKind } from './rdma-ebpf-perftest.js';
import { OP_STEPS } from '../bpf/roce-kern.js';
import { median } from '../measure/stats.js';

export const VARIANT = 'perftest';
export const MODE = 'softroce';
export const PATH = 'rdma';
/** the path MTU the guest's rxe devices use over a 1500-byte veth */
export const MTU = 1024;

/** the QP a direction's packets reach: 'to_server' = client -> server (rxe_b's QP) */
export type Direction = 'to_server' | 'to_client';

export interface Posted {
  dir: Direction;
  cls: RoceClass;
  ops: number;
  bytes: number;
}

/**
 * What the perftest run posted, by the direction its packets travel. Latency tests ping-pong: for
 * write and send both ends post n operations of `size` bytes; read: the client posts n reads, the
 * server's responses carry n × size bytes back. Bandwidth tests: the client posts n operations.
 */
export function posted(kind: PerftestKind, n: number, size: number): Posted[] {
  switch (kind) {
    case 'write_lat':
      return [{ dir: 'to_server', cls: 'write', ops: n, bytes: n * size }, { dir: 'to_client', cls: 'write', ops: n, bytes: n * size }];
    case 'send_lat':
      return [{ dir: 'to_server', cls: 'send', ops: n, bytes: n * size }, { dir: 'to_client', cls: 'send', ops: n, bytes: n * size }];
    case 'read_lat':
      return [{ dir: 'to_server', cls: 'read_req', ops: n, bytes: 0 }, { dir: 'to_client', cls: 'read_resp', ops: n, bytes: n * size }];
    case 'write_bw':
      return [{ dir: 'to_server', cls: 'write', ops: n, bytes: n * size }];
    case 'send_bw':
      return [{ dir: 'to_server', cls: 'send', ops: n, bytes: n * size }];
  }
}

export const LATENCY_METRIC: Partial<Record<PerftestKind, string>> = { write_lat: 'write_latency', send_lat: 'send_latency', read_lat: 'read_latency' };

/** the counters of the QP a direction reaches, found by the QPNs perftest printed and the addresses */
export function qpOf(ph: GuestPhase, dir: Direction, addr: { client: string; server: string }): QpCounters | undefined {
  const [address, qpn] = dir === 'to_server' ? [addr.server, ph.run.serverQpn] : [addr.client, ph.run.clientQpn];
  return ph.counters?.qps.find((q) => q.address === address && q.qpn === qpn);
}

type Row = Omit<RawRow, 'experiment'>;

/** Raw rows of one guest phase. `substrate` goes into params (e.g. guest-rxe-tcg). */
export function phaseRows(ph: GuestPhase, addr: { client: string; server: string }, substrate: string): Row[] {
  const r = ph.run;
  const base = `phase=${ph.phase};size=${r.size};iters=${r.iters};substrate=${substrate}`;
  const row = (metric: string, params: string, value: number, unit: string, iteration = 0): Row => ({ variant: VARIANT, function: r.kind, mode: MODE, path: PATH, metric, params, iteration, value, unit });
  const rows: Row[] = [];
  const lat = LATENCY_METRIC[r.kind];
  const attachedParams = `${base};arm=${ph.arm}`;
  if (lat) {
    if (r.samplesUs.length) r.samplesUs.forEach((v, i) => rows.push(row(lat, attachedParams, v, 'us', (ph.block ?? 0) * r.samplesUs.length + i)));
    // one median per block: blocks drift (placement, the emulator's host), so the overhead's CI is taken over them
    if (r.samplesUs.length && ph.phase === 'overhead') rows.push(row(`${lat}_block_median`, attachedParams, median(r.samplesUs), 'us', ph.block ?? 0));
    else if (r.typicalUs !== undefined && Number.isFinite(r.typicalUs)) rows.push(row(`${lat}_typical`, attachedParams, r.typicalUs, 'us', ph.block ?? 0));
  }
  if (r.bwMBps !== undefined && Number.isFinite(r.bwMBps) && ph.phase !== 'kernel') rows.push(row('write_bw', attachedParams, r.bwMBps, 'MB/s'));
  if (ph.stages) {
    ph.stages.ops.forEach((steps, i) => {
      steps.forEach((ns, j) => rows.push(row('stage_time', `${base};step=${OP_STEPS[j] ?? j}`, ns / 1000, 'us', i)));
      rows.push(row('kernel_path_time', base, steps.reduce((a, b) => a + b, 0) / 1000, 'us', i));
    });
  }
  if (!ph.counters) return rows;
  if (ph.phase === 'proof' || ph.phase === 'loss-baseline') {
    for (const p of posted(r.kind, r.iters, r.size)) {
      const q = qpOf(ph, p.dir, addr);
      const params = `${base};dir=${p.dir};class=${p.cls}`;
      rows.push(row('posted_ops', params, p.ops, 'ops'), row('posted_bytes', params, p.bytes, 'B'));
      rows.push(row('ebpf_ops', params, q?.ops[p.cls] ?? 0, 'ops'), row('ebpf_bytes', params, q?.bytes[p.cls] ?? 0, 'B'));
      rows.push(row('ebpf_psn_missing', params, q?.psnMissing ?? 0, 'psn'));
      // the request-to-ACK time is kept on the requester's QP, which the answers reach
      const requester = qpOf(ph, p.dir === 'to_server' ? 'to_client' : 'to_server', addr);
      if (requester?.rtt.count) rows.push(row('ack_time_mean', `${params};acks=${requester.rtt.count}`, requester.rtt.sumNs / requester.rtt.count / 1000, 'us'));
    }
  }
  if (ph.phase === 'loss' || ph.phase === 'loss-baseline') {
    const server = qpOf(ph, 'to_server', addr);
    const client = qpOf(ph, 'to_client', addr);
    const params = `${base};every_n=${ph.rule?.kind === 'nth' ? ph.rule.everyN : 0}`;
    rows.push(
      row('dropped', params, ph.loss?.dropped ?? 0, 'pkts'),
      row('psn_missing', params, server?.psnMissing ?? 0, 'psn'),
      row('gap_events', params, server?.gapEvents ?? 0, 'events'),
      row('psn_rewinds', params, server?.psnBehind ?? 0, 'events'),
      row('naks_psn_seq', params, client?.naks.psn_seq_error ?? 0, 'pkts'),
      row('ops_completed', params, server?.ops[posted(r.kind, 1, 1)[0]!.cls] ?? 0, 'ops'),
      row('client_exit', params, r.clientExit ?? -1, 'code'),
      row('loss_selected', params, ph.loss?.selected ?? 0, 'pkts'),
      row('retransmitted_to_server', params, server?.retransmitted ?? 0, 'pkts'),
      row('posted_pkts', params, r.iters * Math.max(1, Math.ceil(r.size / MTU)), 'pkts'),
    );
  }
  rows.push(row('malformed', `${base};arm=${ph.arm}`, ph.counters.malformed, 'pkts'), row('retransmitted', `${base};arm=${ph.arm}`, ph.counters.qps.reduce((n, q) => n + q.retransmitted, 0), 'pkts'));
  return rows;
}

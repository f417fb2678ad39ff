// The verbs micro-benchmarks between the two ends of an RDMA pair, beside perftest on the same pair.
// Runs where both namespaces exist (inside the QEMU guest: call it from a command runInGuest runs).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { buildDir } from '../paths.js';
import type { BenchCase, BenchKind, CaseResult, PollMode } from './bench-side.js';
import { inNs, type RdmaPair } from './pair.js';
import { runPerftest, type PerftestBandwidth, type PerftestLatency, type PerftestTool } from './perftest.js';

const SIDE = path.join(buildDir, 'harness', 'rdma', 'bench-side-main.js');

export type Metric = 'write_latency' | 'read_latency' | 'send_latency' | 'write_bw';
const METRIC: Record<BenchKind, Metric> = { write_lat: 'write_latency', read_lat: 'read_latency', send_lat: 'send_latency', write_bw: 'write_bw' };
const TOOL: Record<BenchKind, PerftestTool> = { write_lat: 'ib_write_lat', read_lat: 'ib_read_lat', send_lat: 'ib_send_lat', write_bw: 'ib_write_bw' };

export interface MicrobenchOptions {
  pair: RdmaPair;
  /** message sizes in bytes */
  sizes: number[];
  /** default all four */
  kinds?: BenchKind[];
  /** measured iterations per (kind, size); write_bw: messages */
  iters: number;
  warmup: number;
  /** besides busy polling in C: `event` (completion channel, in C) for read and send latency, `js` (a JS post + poll per READ) for read latency */
  extraPolls?: ('event' | 'js')[];
  /** also run perftest's tool for each (kind, size) */
  perftest?: boolean;
  /** write_bw: WRITEs in flight (perftest's default tx depth is 128; ours is capped by the QP depth, 64) */
  bwDepth?: number;
  /** TCP port of the handshake (and perftest's port + 1) */
  port?: number;
  timeoutMs?: number;
}

/** One row per (source, metric, size, poll). */
export interface MicrobenchRow {
  source: 'harness' | 'perftest';
  metric: Metric;
  size: number;
  /** how completions were waited for; perftest busy-polls */
  poll: PollMode;
  /** harness: the raw per-iteration samples (ns): half round trips for write/send latency, whole READs for read latency, gaps between completions for write_bw */
  samplesNs?: number[];
  /** write_bw: bytes per second over the measured messages */
  bytesPerSec?: number;
  /** perftest's own summary */
  perftest?: PerftestLatency | PerftestBandwidth;
  /** the case failed: why (the other cases still ran) */
  error?: string;
}

function plan(o: MicrobenchOptions): BenchCase[] {
  const kinds = o.kinds ?? ['write_lat', 'read_lat', 'send_lat', 'write_bw'];
  const out: BenchCase[] = [];
  for (const kind of kinds) {
    for (const size of o.sizes) {
      const base = { kind, size, iters: o.iters, warmup: o.warmup, depth: kind === 'write_bw' ? (o.bwDepth ?? 32) : 1 };
      out.push({ ...base, poll: 'busy' });
      for (const p of o.extraPolls ?? []) {
        if (p === 'event' && (kind === 'read_lat' || kind === 'send_lat')) out.push({ ...base, poll: 'event' });
        if (p === 'js' && kind === 'read_lat') out.push({ ...base, poll: 'js' });
      }
    }
  }
  return out;
}

function side(argv: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => (stderr += e.message));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? -1 : null), stdout, stderr: stderr + (signal ? `(killed by ${signal})` : '') });
    });
  });
}

/**
 * Runs the harness's verbs micro-benchmarks (C loops, fresh RC connection per case, server side in
 * namespace B, client in A) for every kind × size (× extra poll mode), then perftest for every
 * kind × size when asked. Each case that fails becomes a row with `error`; the others go on.
 * Quick use: `runMicrobench({ pair: guestPair(), sizes: [64], iters: 1000, warmup: 100, perftest: true })`.
 */
export async function runMicrobench(o: MicrobenchOptions): Promise<MicrobenchRow[]> {
  const cases = plan(o);
  const port = o.port ?? 7471;
  const timeoutMs = o.timeoutMs ?? 120_000;
  const json = JSON.stringify(cases);
  const perCase = String(Math.max(20_000, Math.floor(timeoutMs / 4)));
  const server = side(inNs(o.pair.b, [process.execPath, SIDE, 'server', o.pair.b.address, String(port), json, perCase]), timeoutMs);
  const client = await side(inNs(o.pair.a, [process.execPath, SIDE, 'client', o.pair.b.address, String(port), json, perCase]), timeoutMs);
  const srv = await server;
  const rows: MicrobenchRow[] = [];
  const got = client.stdout.split('\n').filter((l) => l.startsWith('result ')).map((l) => JSON.parse(l.slice(7)) as CaseResult);
  const failure = [client.stdout.match(/^error (.*)$/m)?.[1], srv.stdout.match(/^error (.*)$/m)?.[1], client.code !== 0 ? client.stderr.trim().slice(-300) : ''].filter(Boolean).join('; server: ');
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i]!;
    const r = got[i];
    const row: MicrobenchRow = { source: 'harness', metric: METRIC[c.kind], size: c.size, poll: c.poll };
    if (r) {
      row.samplesNs = r.samplesNs;
      if (r.bytesPerSec !== undefined) row.bytesPerSec = r.bytesPerSec;
    } else row.error = failure || `the client gave no result (exit ${client.code})`;
    rows.push(row);
  }
  if (o.perftest) {
    for (const kind of o.kinds ?? (['write_lat', 'read_lat', 'send_lat', 'write_bw'] as BenchKind[])) {
      for (const size of o.sizes) {
        const row: MicrobenchRow = { source: 'perftest', metric: METRIC[kind], size, poll: 'busy' };
        try {
          row.perftest = await runPerftest(o.pair, TOOL[kind], { size, iterations: o.iters + o.warmup, port: port + 1, timeoutMs: Math.floor(timeoutMs / 2) });
        } catch (e) {
          row.error = (e as Error).message;
        }
        rows.push(row);
      }
    }
  }
  return rows;
}

/** The median of a row's samples (ns), or NaN. */
export function medianNs(row: MicrobenchRow): number {
  const s = (row.samplesNs ?? []).slice().sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

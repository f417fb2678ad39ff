// Synthetic results folders for executing the notebooks in tests: planted raw rows with exact medians,
// summarized and written with the harness's own writers, so a notebook's computed sentences can be checked
// against numbers known in advance. One builder per notebook; a notebook without one fails the test.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compareMedians, writeComparisonCsv } from '../harness/results/comparison.js';
import { csvText } from '../harness/results/raw-writer.js';
import { RAW_COLUMNS, type RawRow } from '../harness/results/schema.js';
import { summarize, writeSummaryCsv } from '../harness/results/summarize.js';
import { createRng } from '../harness/measure/random.js';
import { NAK_CODES, ROCE_CLASSES, type QpCounters } from '../harness/bpf/roce-layout.js';
import type { GuestPhase } from '../harness/experiments/rdma-ebpf-guest.js';
import { phaseRows } from '../harness/experiments/rdma-ebpf-rows.js';
import { planFor } from '../harness/experiments/rdma-ebpf.js';

type Cell = Omit<RawRow, 'iteration' | 'value'>;

/** n samples spread evenly over median·(1 ± spread): the median is exact, the CI narrow. */
export function samples(cell: Cell, median: number, n = 41, spread = 0.02): RawRow[] {
  return Array.from({ length: n }, (_, i) => ({ ...cell, iteration: i, value: median * (1 - spread + (2 * spread * i) / (n - 1)) }));
}

function writeFolder(dir: string, experiment: string, raw: RawRow[], extraEnv: object = {}): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'raw.csv'), csvText(raw, RAW_COLUMNS, true));
  writeSummaryCsv(path.join(dir, 'summary.csv'), summarize(raw));
  fs.writeFileSync(path.join(dir, 'status.json'), JSON.stringify({ state: 'complete', started: '2026-12-01T00:00:00Z', ended: '2026-12-01T00:01:00Z' }));
  fs.writeFileSync(path.join(dir, 'env.json'), JSON.stringify({ quick: false, seed: 1, commandLine: ['zx', `experiments/${experiment}.mjs`], extra: { notes: [], failures: [] }, ...extraEnv }));
}

const E = (experiment: string) => (variant: string, fn: string, mode: string, p: string, metric: string, params = '', unit = 'us'): Cell =>
  ({ experiment, variant, function: fn, mode, path: p, metric, params, unit });

// ---------------------------------------------------------------- sockmap

export interface SockmapPlan {
  /** medians (µs) of the baseline, the relayed and the spliced series on the invocation path */
  tcp: number;
  relayed: number;
  spliced: number;
  /** medians (µs) of the bare hop without and with the programs */
  hopTcp: number;
  hopSockmap: number;
}

export function sockmapFolder(dir: string, o: SockmapPlan): void {
  const c = E('sockmap');
  const raw: RawRow[] = [];
  for (const size of [64, 1024]) {
    const P = `payload=${size};gateway_cpus=1;client_cpus=1`;
    raw.push(...samples(c('wasm+tcp', 'noop', 'warm', 'gateway', 'latency', P), o.tcp));
    raw.push(...samples(c('wasm+sockmap', 'noop', 'warm', 'gateway', 'latency', P), o.relayed));
    raw.push(...samples(c('wasm+sockmap', 'noop', 'warm', 'splice', 'latency', P), o.spliced));
    raw.push(...samples(c('wasm+tcp', 'pingpong', 'warm', 'hop', 'latency', P), o.hopTcp));
    raw.push(...samples(c('wasm+sockmap', 'pingpong', 'warm', 'hop', 'latency', P), o.hopSockmap));
  }
  const P = 'payload=64;gateway_cpus=1;client_cpus=1';
  for (const [v, p, msgs, runs] of [['wasm+sockmap', 'gateway', 400, 400], ['wasm+sockmap', 'splice', 200, 200], ['wasm+sockmap', 'hop', 200, 200], ['wasm+tcp', 'gateway', 400, 0], ['wasm+tcp', 'hop', 200, 0]] as const) {
    const base = { ...c(v, 'noop', 'warm', p, '', P), iteration: 0 };
    raw.push({ ...base, metric: 'msgs_sent', value: msgs, unit: 'msgs' }, { ...base, metric: 'skmsg_runs', value: runs, unit: 'runs' },
      { ...base, metric: 'skmsg_redirected', value: runs, unit: 'msgs' }, { ...base, metric: 'bytes_sent', value: msgs * 80, unit: 'B' },
      { ...base, metric: 'skmsg_bytes', value: runs * 80, unit: 'B' });
  }
  for (const conc of [1, 8]) {
    const T = `payload=64;concurrency=${conc};gateway_cpus=1`;
    raw.push(...samples(c('wasm+tcp', 'noop', 'warm', 'gateway', 'throughput', T, 'req/s'), 1e6 / o.tcp * conc ** 0.5));
    raw.push(...samples(c('wasm+sockmap', 'noop', 'warm', 'gateway', 'throughput', T, 'req/s'), 1e6 / o.relayed * conc ** 0.5));
    raw.push(...samples(c('wasm+sockmap', 'noop', 'warm', 'splice', 'throughput', T, 'req/s'), 1e6 / o.spliced * conc ** 0.5));
  }
  writeFolder(dir, 'sockmap', raw);
}

// ---------------------------------------------------------------- cold start

export interface ColdStartPlan {
  /** median cold start (µs) per variant/mode, the same for every function and path */
  medians: Record<string, number>;
  /** denominators written into cold-start-ratios.csv against container/cold; none: no file */
  ratioDenominators: string[];
}

export function coldStartFolder(dir: string, o: ColdStartPlan): void {
  const c = E('cold-start');
  const raw: RawRow[] = [];
  for (const p of ['direct', 'gateway']) for (const fn of ['noop', 'sha256']) for (const [vm, med] of Object.entries(o.medians)) {
    const [v, m] = vm.split('/') as [string, string];
    raw.push(...samples(c(v, fn, m, p, 'cold_start'), fn === 'sha256' ? med * 1.5 : med, 21));
  }
  writeFolder(dir, 'cold-start', raw);
  if (o.ratioDenominators.length) {
    const rows = o.ratioDenominators.flatMap((d) => {
      const [variant, mode] = d.split('/') as [string, string];
      return ['gateway', 'direct'].flatMap((p) => compareMedians({ rows: raw, metric: 'cold_start', path: p, numerator: { variant: 'container', mode: 'cold' }, denominator: { variant, mode }, rng: createRng(7), iterations: 300 }));
    });
    writeComparisonCsv(path.join(dir, 'cold-start-ratios.csv'), rows);
  }
}

// ---------------------------------------------------------------- warm, throughput, density

export function warmFolder(dir: string, medians: Record<string, { direct: number; gateway: number }>): void {
  const c = E('warm');
  const raw: RawRow[] = [];
  for (const [v, m] of Object.entries(medians)) for (const fn of ['noop', 'sha256']) {
    raw.push(...samples(c(v, fn, 'warm', 'direct', 'latency'), m.direct), ...samples(c(v, fn, 'warm', 'gateway', 'latency'), m.gateway));
  }
  writeFolder(dir, 'warm', raw);
}

/** peak req/s per variant, reached at concurrency 16 (then a drop at 64) */
export function throughputFolder(dir: string, peaks: Record<string, number>): void {
  const c = E('throughput');
  const raw: RawRow[] = [];
  for (const [v, peak] of Object.entries(peaks)) for (const [conc, share] of [[1, 0.3], [4, 0.8], [16, 1], [64, 0.9]] as const) {
    const P = `concurrency=${conc};gateway_cpus=1`;
    raw.push(...samples(c(v, 'noop', 'warm', 'gateway', 'throughput', P, 'req/s'), peak * share));
    raw.push(...samples(c(v, 'noop', 'warm', 'gateway', 'latency', P), (1e6 * conc) / (peak * share)));
  }
  writeFolder(dir, 'throughput', raw);
}

export function densityFolder(dir: string): void {
  const c = E('density');
  const raw: RawRow[] = [];
  for (const [v, pss] of [['wasm', 2], ['native', 1], ['container', 4]] as const) {
    const P = 'instances=16;budget=1024 MiB';
    raw.push(...samples(c(v, 'noop', 'warm', 'idle', 'pss', P, 'MiB'), pss, 16), ...samples(c(v, 'noop', 'warm', 'idle', 'rss', P, 'MiB'), pss * 3, 16));
    raw.push(...samples(c(v, 'noop', 'warm', 'idle', 'fit_in_budget', P, 'instances'), Math.floor(1024 / pss), 16, 0));
  }
  writeFolder(dir, 'density', raw);
}

// ---------------------------------------------------------------- cold breakdown

/** nativeScale stretches native's phases (30: native slower than the container) */
export function coldBreakdownFolder(dir: string, nativeScale = 1): void {
  const c = E('cold-breakdown');
  const raw: RawRow[] = [];
  const cell = (v: string, mode: string, phases: Record<string, number>, counts: Record<string, number>, scope: 'tree' | 'self', untraced: number) => {
    const total = Object.values(phases).reduce((a, b) => a + b, 0);
    for (let i = 0; i < 21; i++) {
      const f = 1 - 0.02 + (0.04 * i) / 20;
      const at = (metric: string, value: number, params = '') => raw.push({ ...c(v, 'noop', mode, 'direct', metric, params), iteration: i, value });
      at('cold_start_traced', total * f);
      at('cold_start_untraced', untraced * f);
      at('first_instruction', total * 0.8 * f);
      for (const [p, us] of Object.entries(phases)) at(`phase:${p}`, us * f);
      for (const [m, n] of Object.entries(counts)) at(m, n, `scope=${scope}`);
      at('trace_prog_time', total * 0.01);
      at('trace_prog_runs', 100);
    }
  };
  cell('container', 'cold', { spawn: 500, 'exec runtime': 2000, 'runtime start': 6000, 'runtime setup': 8000, 'exec function': 1000, 'function run': 300, return: 200 },
    { syscalls_total: 9000, page_faults: 4000, processes: 6, threads: 30, execs: 3, mounts: 12, bytes_read: 500000 }, 'tree', 17000);
  cell('wasm', 'cold', { prepare: 5, 'prepare instance': 5, instantiate: 30, 'function run': 10 },
    { syscalls_total: 4, page_faults: 20, processes: 0, threads: 0, execs: 0, mounts: 0, bytes_read: 0 }, 'self', 49);
  cell('native', 'cold', { spawn: 300 * nativeScale, 'exec function': 400 * nativeScale, 'function run': 100 * nativeScale, return: 50 * nativeScale },
    { syscalls_total: 40, page_faults: 60, processes: 1, threads: 0, execs: 1, mounts: 0, bytes_read: 100 }, 'tree', 840 * nativeScale);
  writeFolder(dir, 'cold-breakdown', raw);
}

// ---------------------------------------------------------------- chains

/** e2e medians (µs) per way at N = 1 and 8 for payloads 64 and 1 MiB; hops and compute derived from them */
export function chainsFolder(dir: string, e2e: Record<string, [number, number]>): void {
  const c = E('chains');
  const raw: RawRow[] = [];
  for (const [w, [n1, n8]] of Object.entries(e2e)) for (const size of [64, 1048576]) for (const n of [1, 8]) {
    const big = size > 64 ? 20 : 1;
    const total = (n === 1 ? n1 : n8) * big;
    const params = `length=${n};payload=${size};cpus=1;client_cpus=1`;
    const computePerStage = size > 64 ? 500 : 2;
    raw.push(...samples(c(w, 'chainstep', 'warm', 'chain', 'e2e', params), total, 21));
    raw.push(...samples(c(w, 'chainstep', 'warm', 'chain', 'compute', params), computePerStage * n, 21));
    raw.push(...samples(c(w, 'chainstep', 'warm', 'chain', 'overhead', params), total - computePerStage * n, 21));
    raw.push(...samples(c(w, 'chainstep', 'warm', 'chain', 'overhead_share', params, '%'), (100 * (total - computePerStage * n)) / total, 21));
    const hops = n + (w.includes('sockmap') ? 1 : 0);
    for (let i = 1; i <= hops; i++) raw.push(...samples(c(w, 'chainstep', 'warm', 'chain', 'hop', `${params};hop=${i}`), total / hops, 21));
    for (let i = 1; i <= n; i++) raw.push(...samples(c(w, 'chainstep', 'warm', 'chain', 'stage_compute', `${params};stage=${i}`), computePerStage, 21));
    raw.push(...samples(c(w, 'chainstep', 'warm', 'chain', 'cpu_per_request', params), total * 1.2, 5));
    raw.push(...samples(c(w, 'chainstep', 'warm', 'chain', 'voluntary_switches_per_request', params, 'switches'), n * 2, 5));
    raw.push(...samples(c(w, 'chainstep', 'warm', 'chain', 'involuntary_switches_per_request', params, 'switches'), 0.1, 5));
  }
  writeFolder(dir, 'chains', raw);
}

// ---------------------------------------------------------------- fork

/** medians (µs) of the first response at 1 MiB, per "mode copy" (e.g. "remote-fork dirty") */
/** first responses at 1 MiB (µs) by "mode copy [via]" */
export function forkFolder(dir: string, firstResponse1MiB: Record<string, number>): void {
  const c = E('fork');
  const raw: RawRow[] = [];
  for (const [mc, us] of Object.entries(firstResponse1MiB)) {
    const [mode, copy, via] = mc.split(' ') as [string, string, string?];
    const p = mode === 'remote-fork' ? 'tcp' : 'local';
    for (const mib of [1, 16]) {
      const params = `state_bytes=${mib * 2 ** 20};copy=${copy}${via ? `;via=${via}` : ''}`;
      raw.push(...samples(c('wasm', 'statefill', mode, p, 'first_response', params), us * mib));
      if (mode !== 'warm') raw.push(...samples(c('wasm', 'statefill', mode, p, 'fork_latency', params), us * mib * 0.7));
      if (mode.endsWith('fork')) raw.push(...samples(c('wasm', 'statefill', mode, p, 'bytes_moved', params, 'bytes'), mib * 2 ** 20, 5, 0));
    }
  }
  for (const k of [1, 2]) raw.push(...samples(c('wasm', 'statefill', 'remote-fork', 'tcp', 'forks_per_second', `state_bytes=1048576;copy=dirty;children=${k}`, 'forks/s'), 300 * k, 3, 0));
  writeFolder(dir, 'fork', raw);
}

// ---------------------------------------------------------------- rdma

/** medians: the invocation round trip (µs) per transport, and the 64 B WRITE latency (µs) of the harness and perftest */
export function rdmaFolder(dir: string, o: { rpc: { tcp: number; rdma: number }; write: { harness: number; perftest: number } }): void {
  const c = E('rdma');
  const raw: RawRow[] = [];
  const sub = 'substrate=softroce-guest-tcg';
  for (const size of [64, 4096]) {
    for (const p of ['tcp', 'rdma'] as const) {
      raw.push(...samples(c('wasm', 'chainstep', 'warm', p, 'rpc_latency', `size=${size};${sub}`), o.rpc[p] * (size === 64 ? 1 : 2)));
      raw.push(...samples(c('wasm', 'chainstep', 'warm', p, 'rpc_throughput', `size=${size};${sub};concurrency=8`, 'req/s'), 1e6 / o.rpc[p], 9));
    }
    for (const v of ['harness', 'perftest'] as const) raw.push(...samples(c(v, 'write', 'verbs', 'rdma', 'write_latency', `size=${size};${sub}`), o.write[v] * (size === 64 ? 1 : 1.5)));
  }
  for (const p of ['tcp', 'rdma'] as const) {
    for (const copy of ['eager', 'dirty']) {
      const params = `state_bytes=1048576;copy=${copy};${sub}`;
      raw.push(...samples(c('wasm', 'statefill', 'remote-fork', p, 'first_response', params), p === 'tcp' ? 80_000 : 40_000, 11));
      raw.push(...samples(c('wasm', 'statefill', 'remote-fork', p, 'fork_latency', params), p === 'tcp' ? 70_000 : 35_000, 11));
    }
  }
  writeFolder(dir, 'rdma', raw);
}

// ---------------------------------------------------------------- parallel

/** every kernel at size 1024 with the given one-thread medians (µs) per implementation; 2 threads at 0.55× (wasm-threads 0.6×); ebpf for reduce only */
export function parallelFolder(dir: string, oneThread: Record<'native' | 'wasm' | 'wasm-simd' | 'wasm-threads', number>): void {
  const c = E('parallel');
  const raw: RawRow[] = [];
  for (const k of ['reduce', 'histogram', 'matmul', 'spmv']) {
    for (const [v, us] of Object.entries(oneThread)) {
      raw.push(...samples(c(v, k, 'warm', 'local', 'time', 'threads=1;size=1024'), us));
      if (v === 'native' || v === 'wasm-threads') {
        raw.push(...samples(c(v, k, 'warm', 'local', 'time', 'threads=2;size=1024'), us * (v === 'native' ? 0.55 : 0.6)));
        raw.push(...samples(c(v, k, 'warm', 'local', 'time', 'threads=4;size=1024;oversubscribed=true'), us * 0.7));
      }
    }
  }
  raw.push(...samples(c('ebpf', 'reduce', 'warm', 'local', 'time', 'threads=1;size=1024'), 5000));
  for (const n of [1, 16]) {
    const p = `n=${n};pool=2;corpus_bytes=262144`;
    raw.push(...samples(c('wasm', 'histogram', 'cold', 'gateway-fanout', 'job_time', p), 750 * n, 5));
    raw.push(...samples(c('wasm', 'histogram', 'cold', 'gateway-fanout', 'straggler', p), 625 * n, 5));
  }
  writeFolder(dir, 'parallel', raw, { cpu: { model: 'test', logicalCores: 2 } });
}

// ---------------------------------------------------------------- rdma-ebpf

export interface RdmaEbpfPlan {
  /** operations the telemetry counted on write_lat's to_client QP in the proof phase (100 were posted) */
  proofSeen: number;
  /** PSNs missing (and NAKs) the telemetry counted in the write_bw loss run, which drops 20 */
  lossMissing: number;
  /** median write latency (µs) of each overhead arm; an arm set to 0 ran but perftest printed no samples */
  arms: Record<string, number>;
}

/**
 * A folder as the experiment writes it: hand-made guest phases turned into rows by the experiment's own
 * phaseRows, so the rows' metrics and params are those of a real run. Addresses and QPNs as in the guest.
 */
export function rdmaEbpfFolder(dir: string, o: RdmaEbpfPlan): void {
  const addr = { client: '10.77.0.1', server: '10.77.0.2' };
  const zero = () => Object.fromEntries(ROCE_CLASSES.map((c) => [c, 0])) as QpCounters['pkts'];
  const naks = (psnSeq = 0) => ({ ...(Object.fromEntries(NAK_CODES.map((c) => [c, 0])) as QpCounters['naks']), psn_seq_error: psnSeq });
  const qp = (address: string, qpn: number, set: Partial<Omit<QpCounters, 'ops' | 'bytes'>> & { ops?: Partial<QpCounters['ops']>; bytes?: Partial<QpCounters['bytes']> } = {}): QpCounters => ({
    address, qpn, pkts: zero(), ackReq: 0, psnMissing: 0, gapEvents: 0, psnBehind: 0, retransmitted: 0, acks: 0, naks: naks(), rnrNaks: 0,
    rtt: { count: 0, sumNs: 0, minNs: 0, maxNs: 0, hist: [] }, firstNs: 0, lastNs: 0, ...set, ops: { ...zero(), ...set.ops }, bytes: { ...zero(), ...set.bytes },
  });
  const rtt = (n: number, us: number) => ({ count: n, sumNs: n * us * 1000, minNs: 0, maxNs: 0, hist: [] });
  const phase = (p: Omit<Partial<GuestPhase>, 'run'> & { run: Partial<GuestPhase['run']> }, qps: QpCounters[] | null): GuestPhase => ({
    phase: 'proof', arm: 'generic', ...p,
    run: { kind: 'write_lat', iters: 100, size: 64, clientExit: 0, serverExit: 0, clientQpn: 17, serverQpn: 18, samplesUs: [], wallMs: 1, clientTail: '', serverTail: '', ...p.run },
    ...(qps ? { counters: { global: {} as never, malformed: 0, qps } } : {}),
  }) as GuestPhase;
  const spread = (median: number, n = 41) => samples({} as Cell, median, n).map((r) => r.value);
  const S = 'guest-rxe-tcg';
  const phases: GuestPhase[] = [
    phase({ run: { kind: 'write_lat', typicalUs: 90 } }, [
      qp(addr.server, 18, { ops: { write: 100 }, bytes: { write: 6400 }, rtt: rtt(100, 40) }),
      qp(addr.client, 17, { ops: { write: o.proofSeen }, bytes: { write: o.proofSeen * 64 }, rtt: rtt(100, 40) }),
    ]),
    phase({ run: { kind: 'send_lat', typicalUs: 95 } }, [qp(addr.server, 18, { ops: { send: 100 }, bytes: { send: 6400 } }), qp(addr.client, 17, { ops: { send: 100 }, bytes: { send: 6400 } })]),
    phase({ run: { kind: 'read_lat', iters: 50, typicalUs: 120 } }, [qp(addr.server, 18, { ops: { read_req: 50 } }), qp(addr.client, 17, { ops: { read_resp: 50 }, bytes: { read_resp: 3200 } })]),
    phase({ run: { kind: 'write_bw', size: 4096, bwMBps: 8 } }, [qp(addr.server, 18, { ops: { write: 100 }, bytes: { write: 409600 } })]),
    phase({ phase: 'loss-baseline', run: { kind: 'write_bw', iters: 1000, size: 1024, bwMBps: 6 } }, [qp(addr.server, 18, { ops: { write: 1000 }, bytes: { write: 1024000 } })]),
    phase({ phase: 'loss', rule: { kind: 'nth', qpn: 'any', everyN: 50 }, loss: { selected: 1040, dropped: 20, drops: [] }, run: { kind: 'write_bw', iters: 1000, size: 1024, bwMBps: 4.5 } }, [
      qp(addr.server, 18, { ops: { write: 1000 }, bytes: { write: 1024000 }, psnMissing: o.lossMissing, gapEvents: o.lossMissing, psnBehind: 20, retransmitted: 20 }),
      qp(addr.client, 17, { naks: naks(o.lossMissing) }),
    ]),
    phase({ phase: 'loss-baseline', run: { kind: 'write_lat', samplesUs: spread(100, 99) } }, [qp(addr.server, 18, { ops: { write: 100 }, bytes: { write: 6400 } }), qp(addr.client, 17, { ops: { write: 100 }, bytes: { write: 6400 } })]),
    phase({ phase: 'loss', rule: { kind: 'nth', qpn: 'any', everyN: 50 }, loss: { selected: 102, dropped: 2, drops: [] }, run: { kind: 'write_lat', samplesUs: spread(130, 99) } }, [qp(addr.server, 18, { ops: { write: 100 }, bytes: { write: 6400 }, retransmitted: 0 })]),
  ];
  // one operation in flight: ns per step of OP_STEPS, 50 operations; send's ack side slower
  const steps = (k: number) => [3000, 14000, 19000, 3000, 7000, 14000 * k, 22000, 2500, 6500, 4000];
  for (const [kind, k] of [['write_bw', 1], ['send_bw', 1.5]] as const) {
    phases.push(phase({ phase: 'kernel', arm: 'detached', run: { kind, iters: 200 }, stages: { attached: [], skipped: [], lost: 0, events: 0, ops: Array.from({ length: 50 }, (_, i) => steps(k).map((ns) => ns * (1 + 0.001 * i))) } }, null));
  }
  // blocks drift by ±1% so the block medians have a spread
  const blocks = 4;
  for (let b = 0; b < blocks; b++) for (const [arm, us] of Object.entries(o.arms)) {
    phases.push(phase({ phase: 'overhead', arm: arm as GuestPhase['arm'], block: b, run: { kind: 'write_lat', iters: 300, samplesUs: us ? spread(us * (b % 2 ? 1.01 : 0.99)) : [] } }, arm === 'detached' ? null : [qp(addr.server, 18), qp(addr.client, 17)]));
  }
  const raw = phases.flatMap((p) => phaseRows(p, addr, S)).map((r): RawRow => ({ experiment: 'rdma-ebpf', ...r }));
  const plan = planFor(true, { seed: 1, blocks, iters: 100 });
  const notes = [`rdma-ebpf: SoftRoCE guest (tcg, kernel 6.1.0-57-amd64, booted in 3.0 s, console log guest/guest/console.log); plan ${JSON.stringify(plan)}`, 'rdma-ebpf: not injected: delays (XDP cannot hold packets)'];
  writeFolder(dir, 'rdma-ebpf', raw, { extra: { notes, failures: [] } });
}

// The eBPF sockmap fast path against the same platform path without it.
//
// Two arms (harness/bpf/arm.ts), each a gateway + executor in a cgroup of its own, identical but for
// the programs: wasm+sockmap (fxh_sockops + fxh_skmsg attached) and wasm+tcp (none). Every hop of an
// invocation — client->gateway, gateway->executor and back — is TCP on 127.0.0.1 between sockets of
// the arm's cgroup. Three series:
//   wasm+tcp, path gateway       the baseline: 4 TCP messages per call, the gateway relays;
//   wasm+sockmap, path gateway   the same, each of the 4 messages redirected to its peer by sk_msg
//                                (the TCP/IP stack skipped; the gateway still relays);
//   wasm+sockmap, path splice    the gateway has joined the client's connection to an executor
//                                connection in fxh_splice: 2 messages per call, client->executor and
//                                executor->client, both redirected by sk_msg; the gateway chose the
//                                executor but is not woken per call (a proxy splice).
//
//   latency:      warm round trip of `noop` with a payload of 64 B, 1 KiB, 16 KiB (--sizes); the
//                 series alternate call by call in a seeded shuffled order. (noop ignores its
//                 input and answers "ok\n": no echo fixture exists; the payload still crosses every
//                 hop of the request, the 21-byte response every hop back.)
//   hop path:     a native blocking ping-pong (harness/bpf/hop-pingpong.c) in each arm's cgroup:
//                 the kernel hop alone, blocks of the two arms in shuffled order.
//   throughput:   closed-loop load (64 B) over a concurrency sweep, series × levels shuffled.
//
// Proof that the fast path carried the traffic: BPF run-time statistics are on while the programs
// are attached; per block we record the messages each series sent over covered sockets
// (`msgs_sent`) and what sk_msg saw (`skmsg_runs`), plus bytes (`bytes_sent`, `skmsg_bytes`) and
// redirects (`skmsg_redirected`). The program counts spliced redirects and their bytes apart, so
// for the splice series skmsg_runs is the number of spliced redirects (a run that spliced), for
// the relayed series the kernel's run_cnt delta minus those. For the tcp arm, skmsg_runs is the run
// count of the only sk_msg program minus what the sockmap arm sent in the same block: 0 means none
// of its messages went through it.
import fs from 'node:fs';
import path from 'node:path';
import type { Experiment, FigureData, RunContext } from '../experiment/context.js';
import { positiveIntFlag, positiveInts } from '../experiment/args.js';
import { FatalMeasurementError } from '../experiment/context.js';
import { closedLoop } from '../experiment/closed-loop.js';
import { withAffinity } from '../experiment/affinity.js';
import { gatewayCall } from '../experiment/measure-call.js';
import type { FunctionEntry } from '../functions/types.js';
import { progress } from '../measure/progress.js';
import { createRng, shuffle } from '../measure/random.js';
import { median } from '../measure/stats.js';
import type { ProtocolClient } from '../platform/client.js';
import { encodeInvoke, encodeResponse } from '../platform/protocol.js';
import { InvokeError } from '../platform/variant.js';
import { compareMedians, writeComparisonCsv } from '../results/comparison.js';
import type { RawRow } from '../results/schema.js';
import { ARM_VARIANT, PLACER_ENV, armCapability, startArm, type Arm, type ArmKind } from '../bpf/arm.js';
import { startupCleanup } from '../bpf/cgroup.js';
import { buildHop, runHop } from '../bpf/hop.js';
import type { SockmapStats } from '../bpf/sockmap.js';
import { drawFigures } from '../figures/draw.js';
import { sockmapFigures } from '../figures/sockmap.js';

// The experiment's own process places the two variants itself (see placementCheck in arm.ts).
process.env[PLACER_ENV] = String(process.pid);

export const TARGET_REDUCTION = 0.2;
const FN = 'noop';
const MODE = 'warm';
const CONNECTIONS = 8;
const JIT_WARMUP_CALLS = 3000;
/** frame bytes of the noop response ("ok\n") */
const RESPONSE_BYTES = encodeResponse({ id: 0, status: 'ok', serverNs: 0, payload: Buffer.from('ok\n') }).length;

function payload(size: number, seed: number): Uint8Array {
  const rng = createRng(seed * 7919 + size);
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = Math.floor(rng() * 256);
  return b;
}

type SeriesKey = 'sockmap' | 'tcp' | 'splice';
const SERIES_ARM: Record<SeriesKey, ArmKind> = { sockmap: 'sockmap', tcp: 'tcp', splice: 'sockmap' };
const SERIES_PATH: Record<SeriesKey, string> = { sockmap: 'gateway', tcp: 'gateway', splice: 'splice' };
/** messages per call on covered sockets: relayed 2 each way, spliced 1 each way */
const MSGS_PER_CALL: Record<SeriesKey, number> = { sockmap: 4, tcp: 4, splice: 2 };
/** a spliced connection's bound on call timeouts (the experiment's calls use --timeout-ms) */
const SPLICE_BOUND_MS = 60_000;

/** A series' clients, counting what they send: calls and the bytes of all messages of each. */
class Series {
  calls = 0;
  bytes = 0;
  constructor(
    readonly key: SeriesKey,
    readonly arm: Arm,
    readonly clients: ProtocolClient[],
  ) {}
  get variant(): string {
    return this.arm.variant;
  }
  get path(): string {
    return SERIES_PATH[this.key];
  }
  async call(fn: FunctionEntry, input: Uint8Array, timeoutMs: number, worker = 0): Promise<number> {
    this.calls++;
    this.bytes += (MSGS_PER_CALL[this.key] / 2) * (frameBytes(this.arm.variant, input) + RESPONSE_BYTES);
    return gatewayCall(this.clients[worker % this.clients.length]!, this.arm.variant, fn, MODE, input, timeoutMs);
  }
  connect(): Promise<ProtocolClient> {
    return this.arm.connect(this.key === 'splice' ? { splice: { timeoutMs: SPLICE_BOUND_MS } } : {});
  }
}

const frameCache = new Map<string, number>();
function frameBytes(variant: string, input: Uint8Array): number {
  const k = `${variant}/${input.length}`;
  let n = frameCache.get(k);
  if (n === undefined) frameCache.set(k, (n = encodeInvoke({ id: 0, mode: MODE, variant, fn: FN, timeoutMs: 0, payload: input }).length));
  return n;
}

type Sent = Partial<Record<SeriesKey, { msgs: number; bytes: number }>>;

/**
 * The proof rows of one block: per series, what it sent against what sk_msg saw (see the header).
 * `a`/`b`: the sockmap arm's statistics before and after the block (null without that arm).
 */
function proofRows(a: SockmapStats | null, b: SockmapStats | null, sent: Sent, params: string, pathOf: (k: SeriesKey) => string, fnName = FN): Omit<RawRow, 'experiment'>[] {
  const d = (f: keyof SockmapStats) => (a && b ? b[f] - a[f] : 0);
  const spliced = { runs: d('spliced'), bytes: d('splicedBytes') };
  const seen: Record<SeriesKey, { runs: number; bytes: number; redirected: number }> = {
    splice: { ...spliced, redirected: spliced.runs },
    sockmap: { runs: d('skMsgRunCount') - spliced.runs, bytes: d('bytes') - spliced.bytes, redirected: d('redirected') - spliced.runs },
    tcp: {
      runs: d('skMsgRunCount') - (sent.sockmap?.msgs ?? 0) - (sent.splice?.msgs ?? 0),
      bytes: d('bytes') - (sent.sockmap?.bytes ?? 0) - (sent.splice?.bytes ?? 0),
      redirected: 0,
    },
  };
  const rows: Omit<RawRow, 'experiment'>[] = [];
  for (const [key, s] of Object.entries(sent) as [SeriesKey, { msgs: number; bytes: number }][]) {
    if (!a || !b) continue; // no program anywhere: nothing to attribute
    const base = { variant: ARM_VARIANT[SERIES_ARM[key]], function: fnName, mode: MODE, path: pathOf(key), params, iteration: 0 };
    rows.push(
      { ...base, metric: 'msgs_sent', value: s.msgs, unit: 'msgs' },
      { ...base, metric: 'skmsg_runs', value: seen[key].runs, unit: 'runs' },
      { ...base, metric: 'bytes_sent', value: s.bytes, unit: 'B' },
      { ...base, metric: 'skmsg_bytes', value: seen[key].bytes, unit: 'B' },
      { ...base, metric: 'skmsg_redirected', value: seen[key].redirected, unit: 'msgs' },
    );
  }
  return rows;
}

export const sockmap: Experiment = {
  name: 'sockmap',
  summary: 'eBPF sockmap fast path (sock_ops + sk_msg redirect) vs the same TCP path without it, in identical cgroups: warm round trip by payload size, the bare kernel hop, throughput',
  notebook: 'sockmap.ipynb',
  flags: {
    sizes: { type: 'string', help: 'sockmap: payload sizes in bytes (default 64,1024,16384)' },
    concurrency: { type: 'string', help: 'throughput/sockmap: comma-separated concurrency levels' },
    'duration-ms': { type: 'string', help: 'throughput/sockmap: measured time per point (default 5000; quick 1000)' },
  },
  async run(ctx) {
    const { args } = ctx;
    const sizes = positiveInts(args, 'sizes', [64, 1024, 16384]);
    const levels = positiveInts(args, 'concurrency', args.quick ? [1, 4, 16] : [1, 4, 16, 64]);
    const durationMs = positiveIntFlag(args, 'duration-ms', args.quick ? 1000 : 5000);
    const reps = ctx.reps(300, 2000);
    const warmup = ctx.warmup(30, 200);
    const fn = ctx.catalog.get(FN);

    // What an earlier crashed run left behind goes first, and the run says so.
    for (const line of startupCleanup()) {
      ctx.notes.push(`sockmap: start-up cleanup: ${line}`);
      process.stderr.write(`sockmap: ${line}\n`);
    }
    const kinds: ArmKind[] = [];
    for (const kind of ['sockmap', 'tcp'] as const) {
      const cap = armCapability(kind);
      if (cap.ok) kinds.push(kind);
      else {
        ctx.skip(ARM_VARIANT[kind], FN, MODE, cap.reason);
        process.stderr.write(`skipping ${ARM_VARIANT[kind]}: ${cap.reason}\n`);
      }
    }
    if (!kinds.length) return;
    const cpus = ctx.gatewayCpus();
    const clientCpus = ctx.clientCpus();
    const armsByKind = new Map<ArmKind, Arm>();
    const series: Series[] = [];
    try {
      for (const kind of kinds) {
        const arm = await startArm(kind, { cpus });
        armsByKind.set(kind, arm);
        series.push(new Series(kind, arm, []));
        if (arm.sockmap) {
          series.push(new Series('splice', arm, []));
          ctx.notes.push(`sockmap: ${arm.sockmap.attachments.join('; ')} (prog ids ${arm.sockmap.progIds.sockops}, ${arm.sockmap.progIds.skmsg}); BPF run-time stats on via BPF_ENABLE_STATS while attached; the gateway splices through fxh_splice (inherited fd)`);
        }
      }
      for (const s of series) s.clients.push(await s.connect());
      ctx.notes.push(`sockmap: arms ${kinds.map((k) => `${ARM_VARIANT[k]} in ${armsByKind.get(k)!.cgroup.path}`).join(', ')}; gateway+executors pinned to ${cpus ?? 'any'}, client to ${clientCpus ?? 'any'}; every hop TCP on 127.0.0.1; series ${series.map((s) => `${s.variant}/${s.path}`).join(', ')}`);
      const sockmapArm = armsByKind.get('sockmap')?.sockmap ?? null;
      const stats = () => (sockmapArm ? sockmapArm.stats() : null);
      const counts = () => new Map(series.map((s) => [s, { calls: s.calls, bytes: s.bytes }]));
      /** what each of `only` (default: all series) sent between two counts */
      const sentBetween = (c0: ReturnType<typeof counts>, c1: ReturnType<typeof counts>, only: Series[] = series): Sent =>
        Object.fromEntries(only.map((s) => [s.key, { msgs: (c1.get(s)!.calls - c0.get(s)!.calls) * MSGS_PER_CALL[s.key], bytes: c1.get(s)!.bytes - c0.get(s)!.bytes }]));
      const pathOf = (k: SeriesKey) => SERIES_PATH[k];

      const fail = (s: { variant: string; path: string }, params: string, e: unknown) => {
        if (e instanceof FatalMeasurementError) throw e;
        if (ctx.interrupted) return;
        ctx.fail({ variant: s.variant, function: FN, mode: MODE, path: s.path, params, reason: `${e instanceof InvokeError ? e.kind + ': ' : ''}${(e as Error).message}` });
      };

      // ---------------------------------------------------------------- warm round trip, by size
      await withAffinity(clientCpus, async () => {
        for (const s of series) {
          const input = payload(64, args.seed);
          for (let i = 0; i < JIT_WARMUP_CALLS && !ctx.interrupted; i++) await s.call(fn, input, args.timeoutMs);
        }
        ctx.notes.push(`sockmap: every series warmed up with ${JIT_WARMUP_CALLS} unrecorded calls`);
        const bar = progress({ label: 'sockmap latency', total: sizes.length * (warmup + reps) });
        for (const size of shuffle(sizes, ctx.rng)) {
          const input = payload(size, args.seed);
          const params = `payload=${size};gateway_cpus=${cpus ?? 'any'};client_cpus=${clientCpus ?? 'any'}`;
          const live = new Set(series);
          const a = stats();
          const c0 = counts();
          for (let round = 0; round < warmup + reps; round++) {
            const batch: Omit<RawRow, 'experiment'>[] = [];
            for (const s of shuffle([...live], ctx.rng)) {
              if (ctx.interrupted) return;
              try {
                const ns = await s.call(fn, input, args.timeoutMs);
                if (round >= warmup) batch.push({ variant: s.variant, function: FN, mode: MODE, path: s.path, metric: 'latency', params, iteration: round - warmup, value: ns / 1000, unit: 'us' });
              } catch (e) {
                live.delete(s);
                fail(s, params, e);
              }
            }
            ctx.record(batch);
            bar.tick();
          }
          ctx.record(proofRows(a, stats(), sentBetween(c0, counts()), params, pathOf));
        }
        bar.done();
      });
      if (ctx.interrupted) return;

      // ---------------------------------------------------------------- the bare kernel hop
      const hop = buildHop();
      if ('error' in hop) {
        for (const k of kinds) ctx.skip(ARM_VARIANT[k], 'pingpong', MODE, `hop path: ${hop.error}`);
      } else {
        try {
          const blocks = args.quick ? 4 : 10;
          const perBlock = Math.max(200, Math.ceil(reps * 5 / blocks));
          const order = shuffle(sizes.flatMap((size) => Array.from({ length: blocks }, () => size)), ctx.rng);
          const bar = progress({ label: 'sockmap hop', total: order.length * kinds.length });
          const iter = new Map<string, number>();
          for (const size of order) {
            const params = `payload=${size};cpus=${cpus ?? 'any'}`;
            for (const kind of shuffle(kinds, ctx.rng)) {
              if (ctx.interrupted) return;
              const arm = armsByKind.get(kind)!;
              const a = stats();
              try {
                const r = await runHop(hop.bin, arm.cgroup.path, { size, warmup: 100, n: perBlock, cpus });
                const key = `${kind}/${size}`;
                const i0 = iter.get(key) ?? 0;
                iter.set(key, i0 + r.rttNs.length);
                // the hop's messages: the client's writes and the server's echoes (2 per exchange)
                const sent: Sent = { [kind]: { msgs: 2 * r.clientSent, bytes: 2 * size * r.clientSent } };
                const rows = proofRows(a, stats(), sent, params, () => 'hop', 'pingpong');
                ctx.record([
                  ...r.rttNs.map((ns, i) => ({ variant: ARM_VARIANT[kind], function: 'pingpong', mode: MODE, path: 'hop', metric: 'latency', params, iteration: i0 + i, value: ns / 1000, unit: 'us' })),
                  ...rows.map((x) => ({ ...x, iteration: i0 })),
                ]);
              } catch (e) {
                fail({ variant: ARM_VARIANT[kind], path: 'hop' }, params, e);
              }
              bar.tick();
            }
          }
          bar.done();
        } finally {
          fs.rmSync(path.dirname(hop.bin), { recursive: true, force: true });
        }
      }
      if (ctx.interrupted) return;

      // ---------------------------------------------------------------- throughput
      for (const s of series) while (s.clients.length < CONNECTIONS) s.clients.push(await s.connect());
      const input = payload(64, args.seed);
      const points = shuffle(series.flatMap((s) => levels.map((concurrency) => ({ s, concurrency }))), ctx.rng);
      const bar = progress({ label: 'sockmap throughput', total: points.length });
      const failed = new Set<Series>();
      for (const p of points) {
        if (ctx.interrupted) return;
        if (failed.has(p.s)) continue;
        const params = `concurrency=${p.concurrency};payload=64;gateway_cpus=${cpus ?? 'any'}`;
        const a = stats();
        const c0 = counts();
        try {
          const r = await closedLoop({
            concurrency: p.concurrency, durationMs, warmupMs: Math.min(500, durationMs / 4), windowMs: 100, reservoir: 2000, rng: ctx.rng,
            call: async (w) => void (await p.s.call(fn, input, args.timeoutMs, w)),
          });
          const base = { variant: p.s.variant, function: FN, mode: MODE, path: p.s.path, params };
          ctx.record([
            ...r.windowsPerSec.map((v, i) => ({ ...base, metric: 'throughput', iteration: i, value: v, unit: 'req/s' })),
            ...r.latencySampleNs.map((v, i) => ({ ...base, metric: 'latency', iteration: i, value: v / 1000, unit: 'us' })),
            ...proofRows(a, stats(), sentBetween(c0, counts(), [p.s]), params, pathOf),
          ]);
        } catch (e) {
          failed.add(p.s);
          fail(p.s, params, e);
        }
        bar.tick();
      }
      bar.done();
      ctx.notes.push(`sockmap: throughput with ${CONNECTIONS} connections per series, load generator unpinned; under load several frames can leave in one write, so skmsg_runs <= msgs_sent there while skmsg_bytes = bytes_sent`);
    } finally {
      await Promise.allSettled([...armsByKind.values()].map((arm) => arm.stop()));
    }
  },
  async figures(data: FigureData, dir: string) {
    return drawFigures(sockmapFigures(data.summary), dir);
  },
  report(data, runDir) {
    return sockmapReport(data, runDir);
  },
};

/** The comparisons the report makes: what is measured against the baseline (wasm+tcp relayed). */
const COMPARISONS = [
  { path: 'gateway', label: 'relayed', what: 'each of the 4 messages redirected to its peer, the gateway relays' },
  { path: 'splice', label: 'spliced', what: 'the gateway joined client and executor in fxh_splice: 2 redirected messages, the gateway off the path' },
  { path: 'hop', label: 'hop', what: 'the kernel hop alone, native ping-pong' },
] as const;

/**
 * Per comparison and size: the median reduction with its bootstrap CI and PASS/FAIL; the run-count
 * proof per path; throughput per series. The spliced series is compared with the baseline's
 * gateway path: the same client -> platform -> function -> client round trip.
 */
export function sockmapReport(data: FigureData, runDir: string): string[] {
  const lines: string[] = [];
  const num = { variant: ARM_VARIANT.sockmap, mode: MODE };
  const den = { variant: ARM_VARIANT.tcp, mode: MODE };
  const all = [];
  const lat = data.raw.filter((r) => r.metric === 'latency' && !/(^|;)concurrency=/.test(r.params));
  const baselineAsSplice = lat.filter((r) => r.variant === den.variant && r.path === 'gateway').map((r) => ({ ...r, path: 'splice' }));
  for (const c of COMPARISONS) {
    const rows = compareMedians({ rows: c.path === 'splice' ? [...lat, ...baselineAsSplice] : lat, metric: 'latency', path: c.path, numerator: num, denominator: den, rng: createRng(11) });
    all.push(...rows);
    for (const r of rows.sort((a, b) => size(a.params) - size(b.params))) {
      if (!Number.isFinite(r.ratio)) continue;
      const red = 1 - r.ratio;
      // PASS only when the whole CI clears the target: the reduction's lower bound, not its estimate
      const redLo = 1 - r.ratio_ci95_hi;
      const verdict = redLo >= TARGET_REDUCTION ? 'PASS' : 'FAIL';
      lines.push(
        `${c.label.padEnd(7)} ${String(size(r.params)).padStart(5)} B: ${r.median_numerator.toFixed(2)} us with sockmap vs ${r.median_denominator.toFixed(2)} us without: ` +
          `${(red * 100).toFixed(1)}% lower (95% CI ${((1 - r.ratio_ci95_hi) * 100).toFixed(1)}..${((1 - r.ratio_ci95_lo) * 100).toFixed(1)}%) — ${verdict} (target: the CI's lower bound at least ${TARGET_REDUCTION * 100}%; ${c.what})`,
      );
    }
  }
  // run-count proof, per path: sum over blocks
  const sumOf = (variant: string, p: string, metric: string, pred: (r: RawRow) => boolean = () => true) =>
    data.raw.filter((r) => r.variant === variant && r.path === p && r.metric === metric && pred(r)).reduce((s, r) => s + r.value, 0);
  for (const p of ['gateway', 'splice', 'hop']) {
    for (const [label, pred] of [['latency', (r: RawRow) => !/(^|;)concurrency=/.test(r.params)], ['load', (r: RawRow) => /(^|;)concurrency=/.test(r.params)]] as const) {
      const msgs = sumOf(num.variant, p, 'msgs_sent', pred);
      if (!msgs) continue;
      const runs = sumOf(num.variant, p, 'skmsg_runs', pred);
      const red = sumOf(num.variant, p, 'skmsg_redirected', pred);
      const bytes = sumOf(num.variant, p, 'bytes_sent', pred);
      const pb = sumOf(num.variant, p, 'skmsg_bytes', pred);
      const baseline = p === 'splice' ? '' : `; ${den.variant}: ${sumOf(den.variant, p, 'msgs_sent', pred)} msgs, ${sumOf(den.variant, p, 'skmsg_runs', pred)} through sk_msg`;
      lines.push(
        `proof   ${p}/${label}: ${num.variant} sent ${msgs} msgs, sk_msg ${p === 'splice' ? 'spliced' : 'run_cnt'} ${runs} (${runs === msgs ? 'equal' : `${((runs / msgs) * 100).toFixed(1)}%`}), ${red} redirected; bytes ${bytes} sent, ${pb} seen by sk_msg (${pb === bytes ? 'equal' : 'differ'})${baseline}`,
      );
    }
  }
  // throughput: median req/s per concurrency, each sockmap series against the baseline
  const tp = data.raw.filter((r) => r.metric === 'throughput');
  const levels = [...new Set(tp.map((r) => conc(r.params)))].sort((a, b) => a - b);
  for (const c of levels) {
    const m = (v: string, p: string) => median(tp.filter((r) => r.variant === v && r.path === p && conc(r.params) === c).map((r) => r.value));
    const b = m(den.variant, 'gateway');
    for (const cmp of COMPARISONS.filter((x) => x.path !== 'hop')) {
      const a = m(num.variant, cmp.path);
      if (!Number.isFinite(a) || !Number.isFinite(b)) continue;
      lines.push(`thrpt   c=${String(c).padStart(2)} ${cmp.label}: ${a.toFixed(0)} req/s with sockmap vs ${b.toFixed(0)} without (${a > b ? 'higher' : 'NOT higher'}, ${(((a / b) - 1) * 100).toFixed(1)}%)`);
    }
  }
  for (const s of data.skips) lines.push(`skipped ${s.variant}: ${s.reason}`);
  if (!lines.length) lines.push('sockmap: nothing measured');
  if (all.length) writeComparisonCsv(path.join(runDir, 'sockmap-comparison.csv'), all, { overwrite: true });
  fs.writeFileSync(path.join(runDir, 'sockmap-report.txt'), lines.join('\n') + '\n');
  return lines;
}

function size(params: string): number {
  return Number(/(?:^|;)payload=(\d+)/.exec(params)?.[1] ?? NaN);
}
function conc(params: string): number {
  return Number(/(?:^|;)concurrency=(\d+)/.exec(params)?.[1] ?? NaN);
}

export type { RunContext };

// The eBPF sockmap fast path against the same platform path without it.
//
// Two arms (harness/bpf/arm.ts), each a gateway + executor in a cgroup of its own, identical but for
// the programs: wasm+sockmap (fxh_sockops + fxh_skmsg attached) and wasm+tcp (none). Every hop of an
// invocation — client->gateway, gateway->executor and back — is TCP on 127.0.0.1 between sockets of
// the arm's cgroup, so with the programs all four messages of a call are redirected by sk_msg.
//
//   gateway path: warm round trip of `noop` with a payload of 64 B, 1 KiB, 16 KiB (--sizes); the
//                 two arms alternate call by call in a seeded shuffled order. (noop ignores its
//                 input and answers "ok\n": no echo fixture exists; the payload still crosses every
//                 hop of the request, the 21-byte response every hop back.)
//   hop path:     a native blocking ping-pong (harness/bpf/hop-pingpong.c) in each arm's cgroup:
//                 the kernel hop alone, blocks of the two arms in shuffled order.
//   throughput:   closed-loop load (64 B) over a concurrency sweep, arms × levels shuffled.
//
// Proof that the fast path carried the traffic: BPF run-time statistics are on while the programs
// are attached; per block we record the messages the platform sent over covered sockets
// (`msgs_sent`: 4 per call on the gateway path, 2 per exchange on the hop path) and the kernel's
// run_cnt delta of fxh_skmsg (`skmsg_runs`), plus bytes (`bytes_sent`, `skmsg_bytes`) and how many
// runs redirected (`skmsg_redirected`). For the tcp arm, skmsg_runs is the run count of the only
// sk_msg program minus what the sockmap arm sent in the same block: 0 means none of its messages
// went through it.
import fs from 'node:fs';
import path from 'node:path';
import type { Experiment, FigureData, RunContext } from '../experiment/context.js';
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

function list(spec: string | undefined, dflt: number[], what: string): number[] {
  if (!spec) return dflt;
  const xs = spec.split(',').map(Number);
  if (xs.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`--${what} wants positive integers, got "${spec}"`);
  return xs;
}

function payload(size: number, seed: number): Uint8Array {
  const rng = createRng(seed * 7919 + size);
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = Math.floor(rng() * 256);
  return b;
}

/** A client of one arm that counts what it sends: calls and the bytes of all four frames of each. */
class Counted {
  calls = 0;
  bytes = 0;
  constructor(
    readonly arm: Arm,
    readonly clients: ProtocolClient[],
  ) {}
  async call(fn: FunctionEntry, input: Uint8Array, timeoutMs: number, worker = 0): Promise<number> {
    this.calls++;
    this.bytes += 2 * (frameBytes(this.arm.variant, input) + RESPONSE_BYTES);
    return gatewayCall(this.clients[worker % this.clients.length]!, this.arm.variant, fn, MODE, input, timeoutMs);
  }
}

const frameCache = new Map<string, number>();
function frameBytes(variant: string, input: Uint8Array): number {
  const k = `${variant}/${input.length}`;
  let n = frameCache.get(k);
  if (n === undefined) frameCache.set(k, (n = encodeInvoke({ id: 0, mode: MODE, variant, fn: FN, timeoutMs: 0, payload: input }).length));
  return n;
}

interface Snapshot {
  stats: SockmapStats | null;
  calls: Record<ArmKind, number>;
  bytes: Record<ArmKind, number>;
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
    const sizes = list(args.extra.sizes as string | undefined, [64, 1024, 16384], 'sizes');
    const levels = list(args.extra.concurrency as string | undefined, args.quick ? [1, 4, 16] : [1, 4, 16, 64], 'concurrency');
    const durationMs = Number(args.extra['duration-ms'] ?? (args.quick ? 1000 : 5000));
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
    const arms = new Map<ArmKind, Counted>();
    try {
      for (const kind of kinds) {
        const arm = await startArm(kind, { cpus });
        arms.set(kind, new Counted(arm, [await arm.connect()]));
        if (arm.sockmap) ctx.notes.push(`sockmap: ${arm.sockmap.attachments.join('; ')} (prog ids ${arm.sockmap.progIds.sockops}, ${arm.sockmap.progIds.skmsg}); BPF run-time stats on via BPF_ENABLE_STATS while attached`);
      }
      ctx.notes.push(`sockmap: arms ${kinds.map((k) => `${ARM_VARIANT[k]} in ${arms.get(k)!.arm.cgroup.path}`).join(', ')}; gateway+executors pinned to ${cpus ?? 'any'}, client to ${clientCpus ?? 'any'}; every hop TCP on 127.0.0.1`);
      const sockmapArm = arms.get('sockmap')?.arm.sockmap ?? null;
      const snap = (): Snapshot => ({
        stats: sockmapArm ? sockmapArm.stats() : null,
        calls: { sockmap: arms.get('sockmap')?.calls ?? 0, tcp: arms.get('tcp')?.calls ?? 0 },
        bytes: { sockmap: arms.get('sockmap')?.bytes ?? 0, tcp: arms.get('tcp')?.bytes ?? 0 },
      });
      /** the proof rows of one block for each arm */
      const proofRows = (a: Snapshot, b: Snapshot, pathName: string, params: string, msgsPerCall: number, fnName = FN): Omit<RawRow, 'experiment'>[] => {
        const rows: Omit<RawRow, 'experiment'>[] = [];
        const runs = a.stats && b.stats ? b.stats.skMsgRunCount - a.stats.skMsgRunCount : 0;
        const progBytes = a.stats && b.stats ? b.stats.bytes - a.stats.bytes : 0;
        const redirected = a.stats && b.stats ? b.stats.redirected - a.stats.redirected : 0;
        const smMsgs = (b.calls.sockmap - a.calls.sockmap) * msgsPerCall;
        const smBytes = b.bytes.sockmap - a.bytes.sockmap;
        for (const kind of kinds) {
          const base = { variant: ARM_VARIANT[kind], function: fnName, mode: MODE, path: pathName, params, iteration: 0 };
          const msgs = (b.calls[kind] - a.calls[kind]) * msgsPerCall;
          const bytes = b.bytes[kind] - a.bytes[kind];
          const mine = kind === 'sockmap' ? { runs, progBytes, redirected } : { runs: runs - smMsgs, progBytes: progBytes - smBytes, redirected: 0 };
          if (kind === 'tcp' && !a.stats) continue; // no program anywhere: nothing to attribute
          rows.push(
            { ...base, metric: 'msgs_sent', value: msgs, unit: 'msgs' },
            { ...base, metric: 'skmsg_runs', value: mine.runs, unit: 'runs' },
            { ...base, metric: 'bytes_sent', value: bytes, unit: 'B' },
            { ...base, metric: 'skmsg_bytes', value: mine.progBytes, unit: 'B' },
            { ...base, metric: 'skmsg_redirected', value: mine.redirected, unit: 'msgs' },
          );
        }
        return rows;
      };

      const fail = (kind: ArmKind, pathName: string, params: string, e: unknown) => {
        if (e instanceof FatalMeasurementError) throw e;
        if (ctx.interrupted) return;
        ctx.fail({ variant: ARM_VARIANT[kind], function: FN, mode: MODE, path: pathName, params, reason: `${e instanceof InvokeError ? e.kind + ': ' : ''}${(e as Error).message}` });
      };

      // ---------------------------------------------------------------- warm round trip, by size
      await withAffinity(clientCpus, async () => {
        for (const kind of kinds) {
          const c = arms.get(kind)!;
          const input = payload(64, args.seed);
          for (let i = 0; i < JIT_WARMUP_CALLS && !ctx.interrupted; i++) await c.call(fn, input, args.timeoutMs);
        }
        ctx.notes.push(`sockmap: gateway path warmed up with ${JIT_WARMUP_CALLS} unrecorded calls per arm`);
        const bar = progress({ label: 'sockmap latency', total: sizes.length * (warmup + reps) });
        for (const size of shuffle(sizes, ctx.rng)) {
          const input = payload(size, args.seed);
          const params = `payload=${size};gateway_cpus=${cpus ?? 'any'};client_cpus=${clientCpus ?? 'any'}`;
          const live = new Set(kinds);
          const s0 = snap();
          for (let round = 0; round < warmup + reps; round++) {
            const batch: Omit<RawRow, 'experiment'>[] = [];
            for (const kind of shuffle([...live], ctx.rng)) {
              if (ctx.interrupted) return;
              try {
                const ns = await arms.get(kind)!.call(fn, input, args.timeoutMs);
                if (round >= warmup) batch.push({ variant: ARM_VARIANT[kind], function: FN, mode: MODE, path: 'gateway', metric: 'latency', params, iteration: round - warmup, value: ns / 1000, unit: 'us' });
              } catch (e) {
                live.delete(kind);
                fail(kind, 'gateway', params, e);
              }
            }
            ctx.record(batch);
            bar.tick();
          }
          ctx.record(proofRows(s0, snap(), 'gateway', params, 4));
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
              const arm = arms.get(kind)!;
              const a = snap();
              try {
                const r = await runHop(hop.bin, arm.arm.cgroup.path, { size, warmup: 100, n: perBlock, cpus });
                const key = `${kind}/${size}`;
                const i0 = iter.get(key) ?? 0;
                iter.set(key, i0 + r.rttNs.length);
                // the hop's messages: the client's writes and the server's echoes (2 per exchange)
                const b = snap();
                b.calls = { ...a.calls, [kind]: a.calls[kind] + r.clientSent };
                b.bytes = { ...a.bytes, [kind]: a.bytes[kind] + 2 * size * r.clientSent };
                const rows = proofRows(a, b, 'hop', params, 2, 'pingpong').filter((x) => x.variant === ARM_VARIANT[kind]);
                ctx.record([
                  ...r.rttNs.map((ns, i) => ({ variant: ARM_VARIANT[kind], function: 'pingpong', mode: MODE, path: 'hop', metric: 'latency', params, iteration: i0 + i, value: ns / 1000, unit: 'us' })),
                  ...rows.map((x) => ({ ...x, iteration: i0 })),
                ]);
              } catch (e) {
                fail(kind, 'hop', params, e);
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
      for (const kind of kinds) {
        const c = arms.get(kind)!;
        while (c.clients.length < CONNECTIONS) c.clients.push(await c.arm.connect());
      }
      const input = payload(64, args.seed);
      const points = shuffle(kinds.flatMap((kind) => levels.map((concurrency) => ({ kind, concurrency }))), ctx.rng);
      const bar = progress({ label: 'sockmap throughput', total: points.length });
      const failed = new Set<ArmKind>();
      for (const p of points) {
        if (ctx.interrupted) return;
        if (failed.has(p.kind)) continue;
        const c = arms.get(p.kind)!;
        const params = `concurrency=${p.concurrency};payload=64;gateway_cpus=${cpus ?? 'any'}`;
        const a = snap();
        try {
          const r = await closedLoop({
            concurrency: p.concurrency, durationMs, warmupMs: Math.min(500, durationMs / 4), windowMs: 100, reservoir: 2000, rng: ctx.rng,
            call: async (w) => void (await c.call(fn, input, args.timeoutMs, w)),
          });
          const base = { variant: ARM_VARIANT[p.kind], function: FN, mode: MODE, path: 'gateway', params };
          ctx.record([
            ...r.windowsPerSec.map((v, i) => ({ ...base, metric: 'throughput', iteration: i, value: v, unit: 'req/s' })),
            ...r.latencySampleNs.map((v, i) => ({ ...base, metric: 'latency', iteration: i, value: v / 1000, unit: 'us' })),
            ...proofRows(a, snap(), 'gateway', params, 4).filter((x) => x.variant === ARM_VARIANT[p.kind]),
          ]);
        } catch (e) {
          failed.add(p.kind);
          fail(p.kind, 'gateway', params, e);
        }
        bar.tick();
      }
      bar.done();
      ctx.notes.push(`sockmap: throughput with ${CONNECTIONS} connections per arm, load generator unpinned; under load several frames can leave in one write, so skmsg_runs <= msgs_sent there while skmsg_bytes = bytes_sent`);
    } finally {
      await Promise.allSettled([...arms.values()].map((c) => c.arm.stop()));
    }
  },
  async figures(data: FigureData, dir: string) {
    return drawFigures(sockmapFigures(data.summary), dir);
  },
  report(data, runDir) {
    return sockmapReport(data, runDir);
  },
};

/** Per path and size: the median reduction with its bootstrap CI and PASS/FAIL; the run-count proof; throughput. */
export function sockmapReport(data: FigureData, runDir: string): string[] {
  const lines: string[] = [];
  const num = { variant: ARM_VARIANT.sockmap, mode: MODE };
  const den = { variant: ARM_VARIANT.tcp, mode: MODE };
  const all = [];
  const lat = data.raw.filter((r) => r.metric === 'latency' && !/(^|;)concurrency=/.test(r.params));
  for (const p of ['gateway', 'hop']) {
    const rows = compareMedians({ rows: lat, metric: 'latency', path: p, numerator: num, denominator: den, rng: createRng(11) });
    all.push(...rows);
    for (const r of rows.sort((a, b) => size(a.params) - size(b.params))) {
      if (!Number.isFinite(r.ratio)) continue;
      const red = 1 - r.ratio;
      const verdict = red >= TARGET_REDUCTION ? 'PASS' : 'FAIL';
      lines.push(
        `${p.padEnd(7)} ${String(size(r.params)).padStart(5)} B: ${r.median_numerator.toFixed(2)} us with sockmap vs ${r.median_denominator.toFixed(2)} us without: ` +
          `${(red * 100).toFixed(1)}% lower (95% CI ${((1 - r.ratio_ci95_hi) * 100).toFixed(1)}..${((1 - r.ratio_ci95_lo) * 100).toFixed(1)}%) — ${verdict} (target ${TARGET_REDUCTION * 100}%)`,
      );
    }
  }
  // run-count proof, per path: sum over blocks
  const sumOf = (variant: string, p: string, metric: string, pred: (r: RawRow) => boolean = () => true) =>
    data.raw.filter((r) => r.variant === variant && r.path === p && r.metric === metric && pred(r)).reduce((s, r) => s + r.value, 0);
  for (const p of ['gateway', 'hop']) {
    for (const [label, pred] of [['latency', (r: RawRow) => !/(^|;)concurrency=/.test(r.params)], ['load', (r: RawRow) => /(^|;)concurrency=/.test(r.params)]] as const) {
      const msgs = sumOf(num.variant, p, 'msgs_sent', pred);
      if (!msgs) continue;
      const runs = sumOf(num.variant, p, 'skmsg_runs', pred);
      const red = sumOf(num.variant, p, 'skmsg_redirected', pred);
      const bytes = sumOf(num.variant, p, 'bytes_sent', pred);
      const pb = sumOf(num.variant, p, 'skmsg_bytes', pred);
      const tcpRuns = sumOf(den.variant, p, 'skmsg_runs', pred);
      const tcpMsgs = sumOf(den.variant, p, 'msgs_sent', pred);
      lines.push(
        `proof   ${p}/${label}: ${num.variant} sent ${msgs} msgs, sk_msg run_cnt ${runs} (${runs === msgs ? 'equal' : `${((runs / msgs) * 100).toFixed(1)}%`}), ${red} redirected; bytes ${bytes} sent, ${pb} seen by sk_msg (${pb === bytes ? 'equal' : 'differ'}); ` +
          `${den.variant}: ${tcpMsgs} msgs, ${tcpRuns} through sk_msg`,
      );
    }
  }
  // throughput: median req/s per concurrency, both arms
  const tp = data.raw.filter((r) => r.metric === 'throughput');
  const levels = [...new Set(tp.map((r) => conc(r.params)))].sort((a, b) => a - b);
  for (const c of levels) {
    const m = (v: string) => median(tp.filter((r) => r.variant === v && conc(r.params) === c).map((r) => r.value));
    const a = m(num.variant);
    const b = m(den.variant);
    if (!Number.isFinite(a) || !Number.isFinite(b)) continue;
    lines.push(`thrpt   c=${String(c).padStart(2)}: ${a.toFixed(0)} req/s with sockmap vs ${b.toFixed(0)} without (${a > b ? 'higher' : 'NOT higher'}, ${(((a / b) - 1) * 100).toFixed(1)}%)`);
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

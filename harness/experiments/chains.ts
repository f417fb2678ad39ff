// Function chains (SPRIGHT-style): a chain of N `chainstep` stages (each adds 1 to every byte, so the
// output after N stages is input + N, checked before any time counts) run four ways:
//   wasm+gateway      (a) the client sends one chain frame to the gateway over TCP; the gateway
//                         calls the wasm executor (over TCP) N times, each output the next input,
//                         and answers with the last output: every hop executor -> gateway ->
//                         executor, the client sends the input and gets the output once, as in (b);
//   wasm+sockmap      (b) one chain node process per stage (harness/chains/node-main.ts), direct TCP
//                         hops node -> node, all sockets in a cgroup with the sockmap programs
//                         (every message an sk_msg redirect); the payload travels in each message;
//   wasm+sockmap+shm  (c) the same nodes, the payload written once to /dev/shm, only 16-byte
//                         descriptors redirected between the nodes (SPRIGHT's design);
//   container+gateway the baseline: the same chain through the gateway with warm runc containers.
// Rows per chain request (µs): e2e; hop (params hop=i: (a) the gateway's i-th round trip to the
// executor; (b)/(c) from the previous sender's send to stage i's send, hop=N+1 the way back to the
// client); stage_compute (params stage=i: the time inside the function of stage i as the variant
// measures it — the executor's serverNs through the gateway (for containers: executor -> container
// -> executor), the node's own measurement around its wasm call for (b)/(c)); compute
// (Σ stage_compute); overhead (e2e − compute: transport and platform) and overhead_share (% of e2e).
// Rows per block of requests: cpu_per_request (µs of CPU of the platform's processes — gateway +
// executors + containers, or the chain nodes — per chain request, from /proc/<pid>/task/*/sched;
// the measuring client is not counted), voluntary_switches_per_request (times those processes
// blocked and were woken) and involuntary_switches_per_request (times they were preempted).
// Cells (way, length, payload) are visited in blocked interleaving as in harness/experiment/latency.ts.
// A chain node that dies fails the way with the reason (the stage, its pid, the signal); the other
// ways go on and the run ends with status 1.
import type { Experiment, FigureData } from '../experiment/context.js';
import { positiveInts } from '../experiment/args.js';
import { FatalMeasurementError } from '../experiment/context.js';
import { withAffinity } from '../experiment/affinity.js';
import type { GatewayHandle } from '../experiment/gateway-process.js';
import { progress } from '../measure/progress.js';
import { shuffle } from '../measure/random.js';
import { median } from '../measure/stats.js';
import type { ProtocolClient } from '../platform/client.js';
import { descendantPids } from '../platform/proc-memory.js';
import type { RawRow } from '../results/schema.js';
import { cgroup2Available, platformCgroup, startupCleanup, type Cgroup } from '../bpf/cgroup.js';
import { attachSockmap, sockmapCapability, type SockmapHandle } from '../bpf/sockmap.js';
import { processSched, staleChainCleanup, startChain, type Chain } from '../chains/chain.js';
import { chainExpected, chainPayload } from '../functions/workloads/chainstep.js';
import { drawFigures } from '../figures/draw.js';
import { chainsFigures } from '../figures/chains.js';

export const WAYS = ['wasm+gateway', 'wasm+sockmap', 'wasm+sockmap+shm', 'container+gateway'] as const;
export type Way = (typeof WAYS)[number];
const FN = 'chainstep';
const MODE = 'warm';
const JIT_WARMUP_CALLS = 3000;

interface Result {
  output: Uint8Array;
  e2eNs: number;
  hopNs: number[];
  /** per stage: time inside the function */
  computeNs: number[];
}

export const chains: Experiment = {
  name: 'chains',
  summary: 'function chains of N chainstep stages: through the gateway, direct over sockmap, SPRIGHT-style descriptors over sockmap with the payload in /dev/shm, and containers; e2e and per-hop latency, CPU per request',
  notebook: 'chains.ipynb',
  flags: {
    lengths: { type: 'string', help: 'chains: chain lengths (default 1,2,4,8; quick 1,2,4,8)' },
    payloads: { type: 'string', help: 'chains: payload sizes in bytes (default 64,4096,65536,1048576; quick 64,65536)' },
  },
  async run(ctx) {
    const { args } = ctx;
    const lengths = positiveInts(args, 'lengths', [1, 2, 4, 8]);
    const payloads = positiveInts(args, 'payloads', args.quick ? [64, 65536] : [64, 4096, 65536, 1048576]);
    if (Math.max(...lengths) > 16) throw new Error('--lengths: at most 16 stages');
    const reps = ctx.reps(20, 200);
    const warmup = ctx.warmup(2, 10);
    const cpus = ctx.gatewayCpus();
    const clientCpus = ctx.clientCpus();
    const maxLen = Math.max(...lengths);
    for (const line of [...startupCleanup(), ...staleChainCleanup()]) ctx.notes.push(`chains: start-up cleanup: ${line}`);

    // which ways can run here
    const ways: Way[] = [];
    const skip = (w: Way, reason: string) => {
      ctx.skip(w, FN, MODE, reason);
      process.stderr.write(`skipping ${w}: ${reason}\n`);
    };
    if (ctx.variants.active.has('wasm')) ways.push('wasm+gateway');
    else skip('wasm+gateway', 'variant wasm is not active (--variants or unavailable)');
    const sm = sockmapCapability();
    const cgOk = cgroup2Available();
    for (const w of ['wasm+sockmap', 'wasm+sockmap+shm'] as const) {
      if (!sm.ok) skip(w, `needs eBPF (sockmap): ${sm.reason}`);
      else if (!cgOk.ok) skip(w, `needs a cgroup of its own: ${cgOk.reason}`);
      else ways.push(w);
    }
    if (ctx.variants.active.has('container')) ways.push('container+gateway');
    else skip('container+gateway', ctx.variants.unavailable.find((u) => u.variant === 'container')?.reason ?? 'variant container is not active (--variants)');
    if (!ways.length) return;

    let gw: GatewayHandle | null = null;
    let client: ProtocolClient | null = null;
    let cgroup: Cgroup | null = null;
    let sockmap: SockmapHandle | null = null;
    let chain: Chain | null = null;
    try {
      if (ways.some((w) => w.endsWith('+gateway'))) {
        gw = await ctx.gateway({ cpus, transport: 'tcp' });
        client = await gw.connect();
      }
      if (ways.some((w) => w.startsWith('wasm+sockmap'))) {
        cgroup = platformCgroup('chains');
        sockmap = attachSockmap(cgroup);
        chain = await startChain({ nodes: maxLen, cgroupPath: cgroup.path, cpus, timeoutMs: args.timeoutMs });
        ctx.notes.push(`chains: ${maxLen} chain nodes in ${cgroup.path} with ${sockmap.attachments.join('; ')}; shared payload file ${chain.shmPath}`);
      }
      if (gw) ctx.notes.push('chains: gateway ways: one chain frame per request, the gateway calls the executor N times; client -> gateway and gateway -> executor over TCP on 127.0.0.1');
      ctx.notes.push(`chains: gateway, executors and chain nodes pinned to ${cpus ?? 'any'}, client to ${clientCpus ?? 'any'}; CPU per request = Σ se.sum_exec_runtime of the platform's processes (not the client) over a block / requests in the block`);
      const fn = ctx.catalog.get(FN);
      const serverPids = (w: Way): number[] => (w.endsWith('+gateway') ? [gw!.pid, ...descendantPids(gw!.pid)] : chain!.pids);

      const callWay = async (w: Way, input: Uint8Array, n: number): Promise<Result> => {
        if (w === 'wasm+sockmap' || w === 'wasm+sockmap+shm') {
          const r = await chain!.call(w === 'wasm+sockmap' ? 'copy' : 'desc', input, n);
          return { output: r.output, e2eNs: r.e2eNs, hopNs: r.hopNs, computeNs: r.computeNs };
        }
        const variant = w === 'wasm+gateway' ? 'wasm' : 'container';
        const t0 = process.hrtime.bigint();
        const r = await client!.chain({ variant, fn: fn.name, mode: MODE, input, timeoutMs: args.timeoutMs }, n);
        const e2eNs = Number(process.hrtime.bigint() - t0);
        if (r.status !== 'ok') throw new Error(`${variant} chain of ${n}: ${r.status}: ${Buffer.from(r.output).toString('utf8')}`);
        if (r.stages.length !== n) throw new Error(`the gateway timed ${r.stages.length} stages of a chain of ${n}`);
        // each stage's time inside the function lies within the gateway's round trip, and those within the client's
        r.stages.forEach((s, i) => {
          if (!(s.serverNs > 0 && s.serverNs <= s.hopNs)) throw new Error(`stage ${i + 1} of ${n} on ${variant}: serverNs ${s.serverNs} is not within the gateway's round trip of ${s.hopNs} ns`);
        });
        const hopsNs = r.stages.reduce((a, s) => a + s.hopNs, 0);
        if (hopsNs > e2eNs) throw new Error(`${variant} chain of ${n}: the gateway's round trips (${hopsNs} ns) exceed the client's ${e2eNs} ns`);
        return { output: r.output, e2eNs, hopNs: r.stages.map((s) => s.hopNs), computeNs: r.stages.map((s) => s.serverNs) };
      };

      await withAffinity(clientCpus, async () => {
        // JIT warm-up: unrecorded calls of the longest chain per way, so every chain node (not only
        // stage 1) and the executors have run their code often enough for V8 to optimise it
        const small = chainPayload(64, args.seed);
        const live = new Set<Way>(ways);
        for (const w of ways) {
          try {
            for (let i = 0; i < JIT_WARMUP_CALLS && !ctx.interrupted; i++) await callWay(w, small, maxLen);
          } catch (e) {
            if (ctx.interrupted) return;
            live.delete(w);
            ctx.fail({ variant: w, function: FN, mode: MODE, path: 'chain', params: `warm-up;length=${maxLen};payload=64`, reason: (e as Error).message });
          }
        }
        ctx.notes.push(`chains: ${JIT_WARMUP_CALLS} unrecorded warm-up calls of ${maxLen} stages (64 B) per way: every node and executor warm`);
        // one input per payload size and one expected output per (size, length), shared by the ways
        const inputs = new Map(payloads.map((size) => [size, Buffer.from(chainPayload(size, args.seed))]));
        const expected = new Map(payloads.flatMap((size) => lengths.map((n) => [`${size}/${n}`, Buffer.from(chainExpected(inputs.get(size)!, n))] as const)));
        const cells = ways.flatMap((w) => lengths.flatMap((n) => payloads.map((size) => ({ w, n, size, input: inputs.get(size)!, want: expected.get(`${size}/${n}`)!, done: 0 }))));
        const block = ctx.blockSize();
        const rounds = Math.ceil((warmup + reps) / block);
        const bar = progress({ label: 'chains', total: rounds * cells.length });
        for (let round = 0; round < rounds; round++) {
          for (const c of shuffle(cells, ctx.rng)) {
            if (ctx.interrupted) return;
            if (!live.has(c.w)) continue;
            const params = `length=${c.n};payload=${c.size};cpus=${cpus ?? 'any'};client_cpus=${clientCpus ?? 'any'}`;
            const base = { variant: c.w, function: FN, mode: MODE, path: 'chain', params };
            const batch: Omit<RawRow, 'experiment'>[] = [];
            try {
              const pids = serverPids(c.w);
              const sched0 = processSched(pids);
              let calls = 0;
              for (let k = 0; k <= block && c.done < warmup + reps; k++) {
                const r = await callWay(c.w, c.input, c.n);
                calls++;
                if (!c.want.equals(r.output)) {
                  throw new FatalMeasurementError(`wrong output from ${c.w} (length ${c.n}, ${c.size} B): not input + ${c.n}`);
                }
                if (k === 0) continue; // the block's absorbing call
                if (r.computeNs.length !== c.n) throw new FatalMeasurementError(`${c.w} (length ${c.n}) reported the compute time of ${r.computeNs.length} stages`);
                if (c.done >= warmup) {
                  const it = c.done - warmup;
                  const compute = r.computeNs.reduce((a, b) => a + b, 0);
                  batch.push({ ...base, metric: 'e2e', iteration: it, value: r.e2eNs / 1000, unit: 'us' });
                  r.hopNs.forEach((ns, i) => batch.push({ ...base, params: `${params};hop=${i + 1}`, metric: 'hop', iteration: it, value: ns / 1000, unit: 'us' }));
                  r.computeNs.forEach((ns, i) => batch.push({ ...base, params: `${params};stage=${i + 1}`, metric: 'stage_compute', iteration: it, value: ns / 1000, unit: 'us' }));
                  batch.push({ ...base, metric: 'compute', iteration: it, value: compute / 1000, unit: 'us' });
                  batch.push({ ...base, metric: 'overhead', iteration: it, value: (r.e2eNs - compute) / 1000, unit: 'us' });
                  batch.push({ ...base, metric: 'overhead_share', iteration: it, value: (100 * (r.e2eNs - compute)) / r.e2eNs, unit: '%' });
                }
                c.done++;
              }
              const sched1 = processSched(pids);
              batch.push({ ...base, metric: 'cpu_per_request', iteration: round, value: (sched1.cpuNs - sched0.cpuNs) / calls / 1000, unit: 'us' });
              batch.push({ ...base, metric: 'voluntary_switches_per_request', iteration: round, value: (sched1.voluntary - sched0.voluntary) / calls, unit: 'switches' });
              batch.push({ ...base, metric: 'involuntary_switches_per_request', iteration: round, value: (sched1.involuntary - sched0.involuntary) / calls, unit: 'switches' });
            } catch (e) {
              if (e instanceof FatalMeasurementError) throw e;
              if (ctx.interrupted) return;
              live.delete(c.w);
              ctx.fail({ variant: c.w, function: FN, mode: MODE, path: 'chain', params, reason: (e as Error).message });
            }
            ctx.record(batch);
            bar.tick();
          }
        }
        bar.done();
      });
      if (sockmap) {
        const s = sockmap.stats();
        ctx.notes.push(`chains: sk_msg over the run: ${s.skMsgRunCount} runs, ${s.redirected} redirected, ${s.bytes} bytes; the chain wrote ${chain!.sent.msgs} messages, ${chain!.sent.bytes} bytes`);
      }
    } finally {
      await chain?.stop();
      sockmap?.detach();
      cgroup?.detach();
      await gw?.stop();
    }
  },
  async figures(data: FigureData, dir: string) {
    return drawFigures(chainsFigures(data.summary), dir);
  },
  report(data) {
    const lines: string[] = [];
    const num = (p: string, k: string) => Number(new RegExp(`(?:^|;)${k}=(\\d+)`).exec(p)?.[1]);
    const of = (metric: string) => data.raw.filter((r) => r.metric === metric);
    const e2e = of('e2e');
    const cpu = of('cpu_per_request');
    const share = of('overhead_share');
    const sizes = [...new Set(e2e.map((r) => num(r.params, 'payload')))].sort((a, b) => a - b);
    const lens = [...new Set(e2e.map((r) => num(r.params, 'length')))].sort((a, b) => a - b);
    const med = (rows: RawRow[], w: string, size: number, n: number) => median(rows.filter((r) => r.variant === w && num(r.params, 'payload') === size && num(r.params, 'length') === n).map((r) => r.value));
    for (const size of sizes) {
      for (const w of WAYS) {
        const cells = lens.map((n) => {
          const m = med(e2e, w, size, n);
          return Number.isFinite(m) ? `N=${n} ${m.toFixed(0)} us (cpu ${med(cpu, w, size, n).toFixed(0)}, ${med(share, w, size, n).toFixed(0)}% outside the function)` : '';
        }).filter(Boolean);
        if (cells.length) lines.push(`chains ${String(size).padStart(7)} B ${w.padEnd(18)} ${cells.join(', ')}`);
      }
    }
    for (const s of data.skips) lines.push(`skipped ${s.variant}: ${s.reason}`);
    return lines.length ? lines : ['chains: nothing measured'];
  },
};

// Throughput under closed-loop load through the binary gateway, swept over concurrency, executor pool
// size (--pools) and the gateway path's transport (--transport).
import type { Experiment, RunContext } from '../experiment/context.js';
import { gatewayPath, substrateParam } from '../experiment/link-places.js';
import { positiveIntFlag, positiveInts } from '../experiment/args.js';
import { closedLoop } from '../experiment/closed-loop.js';
import { gatewayCall } from '../experiment/measure-call.js';
import { FatalMeasurementError } from '../experiment/context.js';
import { InvokeError } from '../platform/variant.js';
import { progress, type Progress } from '../measure/progress.js';
import { shuffle } from '../measure/random.js';
import { throughputFigures } from '../figures/throughput.js';
import { drawFigures } from '../figures/draw.js';
import type { ProtocolClient } from '../platform/client.js';

const CONNECTIONS = 8;
type Cell = ReturnType<RunContext['cells']>[number];

export const throughput: Experiment = {
  name: 'throughput',
  summary: 'closed-loop load through the binary gateway, warm instances, concurrency sweep: requests/s, p50, p99',
  notebook: 'throughput.ipynb',
  flags: {
    concurrency: { type: 'string', help: 'throughput: comma-separated concurrency levels (default 1,2,4,...,64; quick 1,4,16,64)' },
    'duration-ms': { type: 'string', help: 'throughput: measured time per point (default 5000; quick 1000)' },
    pools: { type: 'string', help: 'throughput: executors per variant in the gateway, swept (default 1,2,4; quick 1,2); params pool=N. More than one only helps if the gateway may use more CPUs (--gateway-cpus)' },
  },
  async run(ctx) {
    const { args } = ctx;
    const levels = positiveInts(args, 'concurrency', args.quick ? [1, 4, 16, 64] : [1, 2, 4, 8, 16, 32, 64]);
    const durationMs = positiveIntFlag(args, 'duration-ms', args.quick ? 1000 : 5000);
    // default: throughput of the smallest function unless the user chose
    const cells = ctx.cells(['warm'], args.functions ? ctx.functions : [ctx.catalog.get('noop')]);
    const pools = positiveInts(args, 'pools', args.quick ? [1, 2] : [1, 2, 4]);
    ctx.notes.push(`throughput: load generator unpinned, ${CONNECTIONS} connections to the gateway; executor pools of ${pools.join(', ')} per variant (one gateway each, calls to the member with the fewest in flight)`);
    const bar = progress({ label: 'throughput', total: cells.length * levels.length * pools.length * args.transports.length });
    const failed = new Set<string>();
    for (const transport of args.transports) {
      for (const pool of pools) {
        if (ctx.interrupted) return;
        const gw = await ctx.gateway({ cpus: ctx.gatewayCpus(), pool, transport });
        try {
          const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => gw.connect()));
          const points = shuffle(cells.flatMap((c) => levels.map((concurrency) => ({ ...c, concurrency }))), ctx.rng);
          await sweep(ctx, { points, pool, transport, clients, durationMs, failed, bar });
        } finally {
          await gw.stop();
        }
      }
    }
    bar.done();
  },
  async figures(data, dir) {
    return drawFigures(throughputFigures(data.summary), dir);
  },
};

interface Sweep {
  points: (Cell & { concurrency: number })[];
  pool: number;
  transport: string;
  clients: ProtocolClient[];
  durationMs: number;
  /** variant/function/pool/path that failed: not tried again */
  failed: Set<string>;
  bar: Progress;
}

async function sweep(ctx: RunContext, s: Sweep): Promise<void> {
  const { args } = ctx;
  const cpus = ctx.gatewayCpus();
  const path = gatewayPath(s.transport);
  for (const p of s.points) {
    if (ctx.interrupted) return;
    const key = `${p.variant.name}/${p.fn.name}/${s.pool}/${path}`;
    if (s.failed.has(key)) continue;
    const input = p.fn.workload.input(args.seed, args.scale);
    const params = `concurrency=${p.concurrency};scale=${args.scale};gateway_cpus=${cpus ?? 'any'};pool=${s.pool}${substrateParam()}`;
    try {
      const r = await closedLoop({
        concurrency: p.concurrency, durationMs: s.durationMs, warmupMs: Math.min(500, s.durationMs / 4), windowMs: 100, reservoir: 2000, rng: ctx.rng,
        call: async (w) => void (await gatewayCall(s.clients[w % CONNECTIONS]!, p.variant.name, p.fn, 'warm', input, args.timeoutMs)),
      });
      const base = { variant: p.variant.name, function: p.fn.name, mode: 'warm', path, params };
      ctx.record([
        ...r.windowsPerSec.map((v, i) => ({ ...base, metric: 'throughput', iteration: i, value: v, unit: 'req/s' })),
        ...r.latencySampleNs.map((v, i) => ({ ...base, metric: 'latency', iteration: i, value: v / 1000, unit: 'us' })),
      ]);
    } catch (e) {
      if (e instanceof FatalMeasurementError) throw e;
      if (ctx.interrupted) return;
      s.failed.add(key);
      ctx.fail({ variant: p.variant.name, function: p.fn.name, mode: 'warm', path, params, reason: `${e instanceof InvokeError ? e.kind + ': ' : ''}${(e as Error).message}` });
    }
    s.bar.tick();
  }
}

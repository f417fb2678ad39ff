// Throughput under closed-loop load through the binary gateway, swept over concurrency.
import type { Experiment, RunContext } from '../experiment/context.js';
import { gatewayPath, substrateParam } from '../experiment/link-places.js';
import { positiveIntFlag, positiveInts } from '../experiment/args.js';
import { closedLoop } from '../experiment/closed-loop.js';
import { gatewayCall } from '../experiment/measure-call.js';
import { FatalMeasurementError } from '../experiment/context.js';
import { InvokeError } from '../platform/variant.js';
import { progress } from '../measure/progress.js';
import { shuffle } from '../measure/random.js';
import { throughputFigures } from '../figures/throughput.js';
import { drawFigures } from '../figures/draw.js';

const CONNECTIONS = 8;

export const throughput: Experiment = {
  name: 'throughput',
  summary: 'closed-loop load through the binary gateway, warm instances, concurrency sweep: requests/s, p50, p99',
  notebook: 'throughput.ipynb',
  flags: {
    concurrency: { type: 'string', help: 'throughput: comma-separated concurrency levels (default 1,2,4,...,64; quick 1,4,16,64)' },
    'duration-ms': { type: 'string', help: 'throughput: measured time per point (default 5000; quick 1000)' },
  },
  async run(ctx) {
    const { args } = ctx;
    const levels = positiveInts(args, 'concurrency', args.quick ? [1, 4, 16, 64] : [1, 2, 4, 8, 16, 32, 64]);
    const durationMs = positiveIntFlag(args, 'duration-ms', args.quick ? 1000 : 5000);
    // default: throughput of the smallest function unless the user chose
    const cells = ctx.cells(['warm'], args.functions ? ctx.functions : [ctx.catalog.get('noop')]);
    for (const transport of args.transports) {
      if (ctx.interrupted) return;
      await measureTransport(ctx, cells, levels, durationMs, transport);
    }
  },
  async figures(data, dir) {
    return drawFigures(throughputFigures(data.summary), dir);
  },
};

/** the concurrency sweep through a gateway whose links are `transport`'s */
async function measureTransport(ctx: RunContext, cells: ReturnType<RunContext['cells']>, levels: number[], durationMs: number, transport: string): Promise<void> {
  const { args } = ctx;
  const cpus = ctx.gatewayCpus();
  const path = gatewayPath(transport);
  const gw = await ctx.gateway({ cpus, transport });
  const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => gw.connect()));
  const note = `throughput: load generator unpinned, ${CONNECTIONS} connections to the gateway`;
  if (!ctx.notes.includes(note)) ctx.notes.push(note);
  const points = shuffle(cells.flatMap((c) => levels.map((concurrency) => ({ ...c, concurrency }))), ctx.rng);
  const bar = progress({ label: `throughput ${path}`, total: points.length });
  const failed = new Set<string>();
  for (const p of points) {
    if (ctx.interrupted) return;
    const key = `${p.variant.name}/${p.fn.name}`;
    if (failed.has(key)) continue;
    const input = p.fn.workload.input(args.seed, args.scale);
    const params = `concurrency=${p.concurrency};scale=${args.scale};gateway_cpus=${cpus ?? 'any'}${substrateParam()}`;
    try {
      const r = await closedLoop({
        concurrency: p.concurrency, durationMs, warmupMs: Math.min(500, durationMs / 4), windowMs: 100, reservoir: 2000, rng: ctx.rng,
        call: async (w) => void (await gatewayCall(clients[w % CONNECTIONS]!, p.variant.name, p.fn, 'warm', input, args.timeoutMs)),
      });
      const base = { variant: p.variant.name, function: p.fn.name, mode: 'warm', path, params };
      ctx.record([
        ...r.windowsPerSec.map((v, i) => ({ ...base, metric: 'throughput', iteration: i, value: v, unit: 'req/s' })),
        ...r.latencySampleNs.map((v, i) => ({ ...base, metric: 'latency', iteration: i, value: v / 1000, unit: 'us' })),
      ]);
    } catch (e) {
      if (e instanceof FatalMeasurementError) throw e;
      if (ctx.interrupted) return;
      failed.add(key);
      ctx.fail({ variant: p.variant.name, function: p.fn.name, mode: 'warm', path, params, reason: `${e instanceof InvokeError ? e.kind + ': ' : ''}${(e as Error).message}` });
    }
    bar.tick();
  }
  bar.done();
  if (args.transports.length > 1) await gw.stop();
}

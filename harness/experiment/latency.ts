// Per-invocation latency of (variant, function, mode) cells, two ways:
//  - direct:  the variant called in this process, timed by tinybench, one cell after another in a seeded order;
//  - gateway: through the gateway process over the binary protocol, timed here, cells interleaved in a
//             seeded shuffled order every round so that drift favours no cell.
import type { FunctionEntry } from '../functions/types.js';
import type { Mode, Variant } from '../platform/variant.js';
import { InvokeError } from '../platform/variant.js';
import { progress } from '../measure/progress.js';
import { shuffle } from '../measure/random.js';
import { FatalMeasurementError, type RunContext } from './context.js';
import { gatewayCall } from './measure-call.js';
import { CellInterrupted, measureDirectCell } from './direct-cell.js';
import { withAffinity } from './affinity.js';
import type { ProtocolClient } from '../platform/client.js';
import type { GatewayHandle } from './gateway-process.js';
import { gatewayPath, substrateParam } from './link-places.js';

export interface LatencyPlan {
  modes: readonly Mode[];
  metric: string;
  reps: number;
  warmup: number;
  paths: readonly ('direct' | 'gateway')[];
}

/** A (variant, function, mode) cell being measured, with its input. */
export interface Cell {
  variant: Variant;
  fn: FunctionEntry;
  mode: Mode;
  input: Uint8Array;
  failed: boolean;
}

/** Unrecorded warm calls per variant before the gateway path is measured: the gateway's and the
 *  executors' JavaScript needs thousands of calls before V8 has optimised it. */
const JIT_WARMUP_CALLS = 3000;
const JIT_WARMUP_MAX_MS = 3000;

export async function measureLatency(ctx: RunContext, plan: LatencyPlan): Promise<void> {
  const clientCpus = ctx.clientCpus();
  await withAffinity(clientCpus, () => measure(ctx, plan, `scale=${ctx.args.scale};gateway_cpus=${ctx.gatewayCpus() ?? 'any'};client_cpus=${clientCpus ?? 'any'}${substrateParam()}`));
}

async function measure(ctx: RunContext, plan: LatencyPlan, params: string): Promise<void> {
  const { args } = ctx;
  const cells: Cell[] = ctx.cells(plan.modes).map((c) => ({ ...c, input: c.fn.workload.input(args.seed, args.scale), failed: false }));
  const row = (c: Cell, path: string, iteration: number, ns: number) => ({
    variant: c.variant.name, function: c.fn.name, mode: c.mode, path, metric: plan.metric, params, iteration, value: ns / 1000, unit: 'us',
  });
  const failCell = (c: Cell, path: string, e: unknown) => {
    if (e instanceof FatalMeasurementError) throw e;
    if (ctx.interrupted) return; // torn down under it by Ctrl-C: not the cell's fault
    c.failed = true;
    const kind = e instanceof InvokeError ? `${e.kind}: ` : '';
    ctx.fail({ variant: c.variant.name, function: c.fn.name, mode: c.mode, path, metric: plan.metric, params, unit: 'us', reason: `${kind}${(e as Error).message}` });
  };

  if (plan.paths.includes('direct')) {
    const bar = progress({ label: `${ctx.experiment} direct`, total: cells.length });
    for (const c of shuffle(cells, ctx.rng)) {
      if (ctx.interrupted) return;
      try {
        const samples = await measureDirectCell({
          variant: c.variant, options: ctx.variants.options.get(c.variant.name)!, fn: c.fn, mode: c.mode, input: c.input,
          warmup: plan.warmup, reps: plan.reps, timeoutMs: args.timeoutMs, stopped: () => ctx.interrupted,
        });
        ctx.record(samples.map((ns, i) => row(c, 'direct', i, ns)));
      } catch (e) {
        if (e instanceof CellInterrupted) return;
        failCell(c, 'direct', e);
      }
      bar.tick();
    }
    bar.done();
    for (const c of cells) c.failed = false;
  }

  if (!plan.paths.includes('gateway')) return;
  for (const transport of ctx.args.transports) {
    if (ctx.interrupted) return;
    for (const c of cells) c.failed = false;
    const path = gatewayPath(transport);
    let gw: GatewayHandle;
    try {
      gw = await ctx.gateway({ transport });
    } catch (e) {
      // a transport that cannot start here (no RDMA device, no addresses) fails its cells, not the run
      for (const c of cells) failCell(c, path, e);
      continue;
    }
    const client = await gw.connect();
    const live = () => cells.filter((c) => !c.failed);
    await warmUpGateway(ctx, client, cells);
    // Blocked interleaving: every round visits the cells in a new seeded order (so drift favours
    // none), and each visit is a block of calls whose first one is not recorded: it absorbs what the
    // previous cell left behind on the shared CPU (a container's teardown, V8 compiling in the
    // background). Modes get rounds of their own for the same reason.
    const block = ctx.blockSize();
    const perCell = plan.warmup + plan.reps;
    const rounds = Math.ceil(perCell / block);
    const bar = progress({ label: `${ctx.experiment} ${path}`, total: rounds * (block + 1) * cells.length });
    const settleMs = ctx.settleMs();
    const done = new Map<Cell, number>();
    for (const mode of shuffle(plan.modes.filter((m) => cells.some((c) => c.mode === m)), ctx.rng)) {
      for (let round = 0; round < rounds; round++) {
        const batch: ReturnType<typeof row>[] = [];
        for (const c of shuffle(live().filter((x) => x.mode === mode), ctx.rng)) {
          for (let k = 0; k <= block && !c.failed; k++) {
            if (ctx.interrupted) return;
            const n = done.get(c) ?? 0;
            if (k > 0 && n >= perCell) break;
            if (settleMs > 0) await new Promise((r) => setTimeout(r, settleMs));
            try {
              const ns = await gatewayCall(client, c.variant.name, c.fn, c.mode, c.input, args.timeoutMs);
              if (k === 0) continue; // the block's absorbing call
              if (n >= plan.warmup) batch.push(row(c, path, n - plan.warmup, ns));
              done.set(c, n + 1);
            } catch (e) {
              failCell(c, path, e);
            }
            bar.tick();
          }
        }
        ctx.record(batch);
      }
    }
    bar.done();
    // each transport's gateway and executors go before the next one's start
    if (ctx.args.transports.length > 1) await gw.stop();
  }
}

async function warmUpGateway(ctx: RunContext, client: ProtocolClient, cells: Cell[]): Promise<void> {
  const done = new Set<string>();
  for (const c of cells) {
    if (done.has(c.variant.name) || ctx.interrupted) continue;
    const mode = c.variant.supports(c.fn, 'warm') === null && c.variant.modes.includes('warm') ? 'warm' : c.mode;
    const end = Date.now() + JIT_WARMUP_MAX_MS;
    let n = 0;
    try {
      while (n < JIT_WARMUP_CALLS && Date.now() < end && !ctx.interrupted) {
        await gatewayCall(client, c.variant.name, c.fn, mode, c.input, ctx.args.timeoutMs);
        n++;
      }
    } catch (e) {
      if (e instanceof FatalMeasurementError) throw e;
      // this cell fails and says why when it is measured; warm the variant up with its next cell
      ctx.notes.push(`${ctx.experiment}: gateway warm-up with ${c.variant.name}/${c.fn.name}/${mode} failed after ${n} calls (${(e as Error).message.slice(0, 120)}); trying the variant's next cell`);
      continue;
    }
    done.add(c.variant.name);
    ctx.notes.push(`${ctx.experiment}: gateway path warmed up with ${n} unrecorded ${c.variant.name}/${c.fn.name}/${mode} calls`);
  }
}

// Density: memory of one idle, ready instance, and how many fit in a memory budget.
import type { Experiment } from '../experiment/context.js';
import { FatalMeasurementError } from '../experiment/context.js';
import { positiveIntFlag } from '../experiment/args.js';
import { progress } from '../measure/progress.js';
import { shuffle } from '../measure/random.js';
import { densityFigures } from '../figures/density.js';
import { drawFigures } from '../figures/draw.js';

const MiB = 2 ** 20;

export const density: Experiment = {
  name: 'density',
  summary: 'memory of an idle warm instance (RSS and PSS from /proc) and how many instances fit in a memory budget',
  notebook: 'density.ipynb',
  flags: {
    instances: { type: 'string', help: 'density: idle instances started per variant x function (default 16; quick 4)' },
    'budget-mib': { type: 'string', help: 'density: memory budget for the fit estimate (default 1024)' },
  },
  async run(ctx) {
    const { args } = ctx;
    const count = positiveIntFlag(args, 'instances', args.quick ? 4 : 16);
    const budget = positiveIntFlag(args, 'budget-mib', 1024);
    const fns = args.functions ? ctx.functions : ['noop', 'sha256', 'json'].map((n) => ctx.catalog.get(n));
    const cells = shuffle(ctx.cells(['warm'], fns), ctx.rng);
    const bar = progress({ label: 'density', total: cells.length });
    for (const c of cells) {
      if (ctx.interrupted) return;
      const params = `instances=${count};budget=${budget} MiB`;
      if (!c.variant.measureIdle) {
        ctx.skip(c.variant.name, c.fn.name, 'warm', 'the variant cannot measure idle instances (no measureIdle)');
        continue;
      }
      try {
        const mem = await c.variant.measureIdle(c.fn, count);
        const base = { variant: c.variant.name, function: c.fn.name, mode: 'warm', path: 'idle', params };
        ctx.record(mem.flatMap((m, i) => [
          { ...base, metric: 'pss', iteration: i, value: m.pssBytes / MiB, unit: 'MiB' },
          { ...base, metric: 'rss', iteration: i, value: m.rssBytes / MiB, unit: 'MiB' },
          { ...base, metric: 'fit_in_budget', iteration: i, value: m.pssBytes > 0 ? Math.floor((budget * MiB) / m.pssBytes) : NaN, unit: 'instances' },
        ]));
        if (mem[0]) ctx.notes.push(`density ${c.variant.name}/${c.fn.name}: ${mem[0].method}`);
      } catch (e) {
        if (e instanceof FatalMeasurementError) throw e;
        if (ctx.interrupted) return;
        ctx.fail({ variant: c.variant.name, function: c.fn.name, mode: 'warm', path: 'idle', params, reason: (e as Error).message });
      }
      bar.tick();
    }
    bar.done();
  },
  async figures(data, dir) {
    return drawFigures(densityFigures(data.summary), dir);
  },
};

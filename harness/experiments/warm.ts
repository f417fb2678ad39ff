// Warm invocation latency: the same live instance serves call after call.
import type { Experiment } from '../experiment/context.js';
import { measureLatency } from '../experiment/latency.js';
import { latencyFiguresByPath } from '../figures/by-path.js';
import { drawFigures } from '../figures/draw.js';

export const warm: Experiment = {
  name: 'warm',
  summary: 'warm invocation latency: a live instance reused for every call',
  notebook: 'warm.ipynb',
  async run(ctx) {
    await measureLatency(ctx, { modes: ['warm'], metric: 'latency', reps: ctx.reps(200, 2000), warmup: ctx.warmup(20, 200), paths: ['direct', 'gateway'] });
  },
  async figures(data, dir) {
    return drawFigures(latencyFiguresByPath(data.summary, { name: 'warm', title: 'Warm latency', metric: 'latency', quantity: 'warm latency', modes: ['warm'] }), dir);
  },
};

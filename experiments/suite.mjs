#!/usr/bin/env zx
// The default suite: every experiment into one results folder. `npm start` runs it with --quick.
import { runSuite } from '../build/harness/experiment/main.js';
import { coldStart } from '../build/harness/experiments/cold-start.js';
import { warm } from '../build/harness/experiments/warm.js';
import { throughput } from '../build/harness/experiments/throughput.js';
import { density } from '../build/harness/experiments/density.js';
import { sockmap } from '../build/harness/experiments/sockmap.js';
import { coldBreakdown } from '../build/harness/experiments/cold-breakdown.js';
import { chains } from '../build/harness/experiments/chains.js';
import { fork_ } from '../build/harness/experiments/fork.js';
import { parallel } from '../build/harness/experiments/parallel.js';

await runSuite({
  name: 'suite',
  summary: 'cold start, warm latency, throughput and density of every variant and function, into one results folder',
  experiments: [coldStart, warm, throughput, density, sockmap, coldBreakdown, chains, fork_, parallel],
  scriptUrl: import.meta.url,
  fullRuns: 3,
});

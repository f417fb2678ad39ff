#!/usr/bin/env zx
// zx experiments/cold-breakdown.mjs --help
import { runSuite } from '../build/harness/experiment/main.js';
import { coldBreakdown } from '../build/harness/experiments/cold-breakdown.js';

await runSuite({ name: 'cold-breakdown', summary: coldBreakdown.summary, experiments: [coldBreakdown], scriptUrl: import.meta.url });

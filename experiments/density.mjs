#!/usr/bin/env zx
// zx experiments/density.mjs --help
import { runSuite } from '../build/harness/experiment/main.js';
import { density } from '../build/harness/experiments/density.js';

await runSuite({ name: 'density', summary: density.summary, experiments: [density], scriptUrl: import.meta.url });

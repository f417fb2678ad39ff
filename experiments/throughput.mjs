#!/usr/bin/env zx
// zx experiments/throughput.mjs --help
import { runSuite } from '../build/harness/experiment/main.js';
import { throughput } from '../build/harness/experiments/throughput.js';

await runSuite({ name: 'throughput', summary: throughput.summary, experiments: [throughput], scriptUrl: import.meta.url });

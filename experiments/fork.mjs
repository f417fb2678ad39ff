#!/usr/bin/env zx
// zx experiments/fork.mjs --help
import { runSuite } from '../build/harness/experiment/main.js';
import { fork_ } from '../build/harness/experiments/fork.js';

await runSuite({ name: 'fork', summary: fork_.summary, experiments: [fork_], scriptUrl: import.meta.url });

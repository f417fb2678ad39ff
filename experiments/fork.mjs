#!/usr/bin/env zx
// zx experiments/fork.mjs --help
import { runSuite } from '../build/harness/experiment/main.js';
import { fork_ } from '../build/harness/experiments/fork.js';

// fork.mjs drives the WASM engine and the node agents itself: no other variant is started for it
await runSuite({ name: 'fork', summary: fork_.summary, experiments: [fork_], scriptUrl: import.meta.url, defaultVariants: ['wasm'] });

#!/usr/bin/env zx
// zx experiments/chains.mjs --help   (ways over sockmap need root and eBPF; without them they are skipped with the reason)
import { runSuite } from '../build/harness/experiment/main.js';
import { chains } from '../build/harness/experiments/chains.js';

await runSuite({ name: 'chains', summary: chains.summary, experiments: [chains], scriptUrl: import.meta.url });

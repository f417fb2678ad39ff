#!/usr/bin/env zx
// zx experiments/sockmap.mjs --help   (needs root and eBPF; without them both arms are skipped with the reason)
import { runSuite } from '../build/harness/experiment/main.js';
import { sockmap } from '../build/harness/experiments/sockmap.js';

await runSuite({ name: 'sockmap', summary: sockmap.summary, experiments: [sockmap], scriptUrl: import.meta.url });

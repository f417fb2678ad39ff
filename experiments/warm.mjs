#!/usr/bin/env zx
// zx experiments/warm.mjs --help
import { runSuite } from '../build/harness/experiment/main.js';
import { warm } from '../build/harness/experiments/warm.js';

await runSuite({ name: 'warm', summary: warm.summary, experiments: [warm], scriptUrl: import.meta.url });

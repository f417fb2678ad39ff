#!/usr/bin/env zx
// zx experiments/cold-start.mjs --help
import { runSuite } from '../build/harness/experiment/main.js';
import { coldStart } from '../build/harness/experiments/cold-start.js';

await runSuite({ name: 'cold-start', summary: coldStart.summary, experiments: [coldStart], scriptUrl: import.meta.url });

#!/usr/bin/env zx
// zx experiments/rdma.mjs --help
import { runSuite } from '../build/harness/experiment/main.js';
import { rdma } from '../build/harness/experiments/rdma.js';

// it starts its own agents where RDMA is (the SoftRoCE guest when this machine has none)
await runSuite({ name: 'rdma', summary: rdma.summary, experiments: [rdma], scriptUrl: import.meta.url, defaultVariants: ['wasm'] });

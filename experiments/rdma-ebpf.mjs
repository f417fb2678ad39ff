#!/usr/bin/env zx
// zx experiments/rdma-ebpf.mjs --help   (needs root and the SoftRoCE guest; without them it is skipped with the reason)
import { runSuite } from '../build/harness/experiment/main.js';
import { rdmaEbpf } from '../build/harness/experiments/rdma-ebpf.js';

await runSuite({ name: 'rdma-ebpf', summary: rdmaEbpf.summary, experiments: [rdmaEbpf], scriptUrl: import.meta.url, defaultVariants: [] });

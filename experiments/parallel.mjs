#!/usr/bin/env zx
// zx experiments/parallel.mjs --help
import { runSuite } from '../build/harness/experiment/main.js';
import { parallel } from '../build/harness/experiments/parallel.js';

// the kernels drive their own engines (native runner, V8, BPF_PROG_RUN); the platform variants are
// started only for the fan-out through the gateway
await runSuite({ name: 'parallel', summary: parallel.summary, experiments: [parallel], scriptUrl: import.meta.url, defaultVariants: ['wasm', 'wasm-fork', 'native', 'container'] });

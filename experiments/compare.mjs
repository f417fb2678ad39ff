#!/usr/bin/env zx
// zx experiments/compare.mjs <folderA> <folderB> --help
import { compareMain } from '../build/harness/experiment/compare-main.js';
import { scriptArgs } from '../build/harness/experiment/args.js';

process.exitCode = await compareMain(scriptArgs(process.argv, import.meta.url));

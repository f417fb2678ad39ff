// Registry of workloads by name (the `workload` field of wasm-fixtures/functions.json).
import type { Workload } from '../types.js';
import { chainstep } from './chainstep.js';
import { classify } from './classify.js';
import { compress } from './compress.js';
import { counter } from './counter.js';
import { fnv1a } from './fnv1a.js';
import { histogram } from './histogram.js';
import { json } from './json.js';
import { matmul } from './matmul.js';
import { crash, loop, memhog, trap } from './misbehave.js';
import { noop } from './noop.js';
import { pagerank } from './pagerank.js';
import { sha256 } from './sha256.js';
import { statefill } from './statefill.js';

export const WORKLOADS: Readonly<Record<string, Workload>> = Object.freeze({
  noop, json, sha256, matmul, compress, pagerank, loop, trap, memhog, crash,
  fnv1a, classify, histogram, chainstep, counter, statefill,
});

export function getWorkload(name: string): Workload {
  const w = WORKLOADS[name];
  if (!w) throw new Error(`unknown workload "${name}"; known: ${Object.keys(WORKLOADS).join(', ')}`);
  return w;
}

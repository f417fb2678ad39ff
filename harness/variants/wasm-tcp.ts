// Variant "wasm+tcp": the fair baseline of wasm+sockmap — the same wasm runtime, the same TCP
// transport to its executor, an identical cgroup of its own, and NO eBPF programs. It needs root
// only for the cgroup (harness/bpf/arm.ts).
import type { VariantPlugin } from '../platform/variant.js';
import { placementCheck } from '../bpf/arm.js';
import { renamedWasm } from './wasm-renamed.js';
import { WASM_MODES } from './wasm.js';

const plugin: VariantPlugin = {
  name: 'wasm+tcp',
  summary: 'wasm (warm) behind TCP in a cgroup like wasm+sockmap\'s but without programs (its baseline); needs root for the cgroup; only in the sockmap experiment',
  modes: WASM_MODES,
  executor: { transport: 'tcp' },
  experiments: ['sockmap'],
  create: (opts) => renamedWasm('wasm+tcp', opts, async () => placementCheck('tcp')),
};
export default plugin;

// Variant "wasm+sockmap": the wasm runtime in an executor reached over TCP on 127.0.0.1, inside the
// platform's cgroup where fxh_sockops puts both ends of the gateway<->executor connection into a
// SOCKHASH and fxh_skmsg redirects every message to the peer socket, skipping the TCP/IP stack
// (bpf/sockmap.bpf.c, harness/bpf/arm.ts). Its fair baseline is wasm+tcp.
import type { VariantPlugin } from '../platform/variant.js';
import { placementCheck } from '../bpf/arm.js';
import { renamedWasm } from './wasm-renamed.js';
import { WASM_MODES } from './wasm.js';

const plugin: VariantPlugin = {
  name: 'wasm+sockmap',
  summary: 'wasm (warm) behind TCP with the eBPF sockmap fast path (sock_ops + sk_msg redirect) in the platform cgroup; needs root and eBPF; only in the sockmap experiment',
  modes: WASM_MODES,
  executor: { transport: 'tcp' },
  experiments: ['sockmap'],
  create: (opts) => renamedWasm('wasm+sockmap', opts, async () => placementCheck('sockmap')),
};
export default plugin;

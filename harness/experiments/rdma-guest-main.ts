// The half of the rdma experiment that runs where RDMA is (the SoftRoCE guest, or a host with devices):
//   node rdma-guest-main.js --out FILE --transports tcp,rdma --sizes 64,4096 --reps N --fork-reps N [--phases verbs,rpc,fork]
// Between two addresses (FXH_GATEWAY_ADDR = the caller's side, FXH_NODE_ADDR = the agents' side):
//   verbs: the harness's verbs loops (write/read/send latency, write bandwidth; busy, event-driven and
//         JS-driven polling) and perftest's ib_* tools on the same two devices, by size;
//   rpc:  one node agent serving wasm chainstep (every byte + 1), called over each transport with a
//         payload of each size: round-trip latency, then closed-loop throughput; every answer verified;
//   fork: remote fork of a statefill parent (1 MiB of state) by a child agent over each transport
//         (over rdma the child's region reads are one-sided RDMA READs), eager and dirty copies.
// Writes raw rows (the results schema's, without experiment/run) as JSON lines to FILE; problems as
// {"fail": …} lines, so that one transport failing leaves the other's rows.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { loadCatalog } from '../functions/catalog.js';
import { chainPayload } from '../functions/workloads/chainstep.js';
import { statefillAnswer } from '../functions/workloads/statefill.js';
import { AgentClient } from '../platform/agent-client.js';
import { ProtocolClient } from '../platform/client.js';
import { launchNode } from '../platform/nodes/inventory.js';
import type { LaunchedNode } from '../platform/nodes/kind.js';
import { closedLoop } from '../experiment/closed-loop.js';
import { gatewayCall } from '../experiment/measure-call.js';
import { createRng } from '../measure/random.js';
import { runMicrobench } from '../rdma/microbench.js';
import { guestPair } from '../rdma/pair.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    transports: { type: 'string', default: 'tcp,rdma' },
    sizes: { type: 'string', default: '64,4096,65536' },
    reps: { type: 'string', default: '200' },
    'fork-reps': { type: 'string', default: '10' },
    'duration-ms': { type: 'string', default: '1000' },
    phases: { type: 'string', default: 'verbs,rpc,fork' },
    'timeout-ms': { type: 'string', default: '10000' },
  },
});
if (!values.out) throw new Error('--out FILE is required');
const outFile = values.out;
const callerAddr = process.env.FXH_GATEWAY_ADDR ?? '127.0.0.1';
const nodeAddr = process.env.FXH_NODE_ADDR ?? '127.0.0.1';
const substrate = process.env.FXH_GUEST_SUBSTRATE ?? 'host';
const transports = values.transports.split(',');
const sizes = values.sizes.split(',').map(Number);
const reps = Number(values.reps);
const forkReps = Number(values['fork-reps']);
const timeoutMs = Number(values['timeout-ms']);
const phases = values.phases.split(',');
const emit = (o: object) => fs.appendFileSync(outFile, JSON.stringify(o) + '\n');
const catalog = await loadCatalog();

async function agent(name: string, variant: string, scheme: string, addr: string): Promise<LaunchedNode> {
  return launchNode({ name, kind: 'local' }, { variants: [variant], memoryLimitMiB: 256, listen: `${scheme}:${addr}:0` });
}

async function rpc(scheme: string): Promise<void> {
  const fn = catalog.get('chainstep');
  const node = await agent('rpc', 'wasm', scheme, nodeAddr);
  try {
    const client = await ProtocolClient.connect(node.endpoint);
    for (const size of sizes) {
      const input = chainPayload(size, 1);
      const params = `size=${size};substrate=${substrate}`;
      const base = { variant: 'wasm', function: 'chainstep', mode: 'warm', path: scheme, params };
      for (let i = 0; i < Math.min(50, reps); i++) await gatewayCall(client, 'wasm', fn, 'warm', input, timeoutMs);
      const rows = [];
      for (let i = 0; i < reps; i++) rows.push({ ...base, metric: 'rpc_latency', iteration: i, value: (await gatewayCall(client, 'wasm', fn, 'warm', input, timeoutMs)) / 1000, unit: 'us' });
      for (const r of rows) emit(r);
      const clients = await Promise.all(Array.from({ length: 4 }, () => ProtocolClient.connect(node.endpoint)));
      const load = await closedLoop({
        concurrency: 8, durationMs: Number(values['duration-ms']), warmupMs: 200, windowMs: 100, reservoir: 500, rng: createRng(size),
        call: async (w) => void (await gatewayCall(clients[w % clients.length]!, 'wasm', fn, 'warm', input, timeoutMs)),
      });
      for (const c of clients) c.close();
      load.windowsPerSec.forEach((v, i) => emit({ ...base, params: `${params};concurrency=8`, metric: 'rpc_throughput', iteration: i, value: v, unit: 'req/s' }));
    }
    client.close();
  } finally {
    await node.stop();
  }
}

async function fork(scheme: string): Promise<void> {
  const V = 'wasm-fork';
  const a = await agent('parent', V, scheme, nodeAddr);
  let b: LaunchedNode | null = null;
  try {
    b = await agent('child', V, scheme, callerAddr);
    const parent = await AgentClient.connect(a.endpoint);
    const child = await AgentClient.connect(b.endpoint);
    const mib = 1;
    const d = await parent.snapshotRegister(V, 'statefill', Buffer.from(String(mib)), 1);
    const expected = statefillAnswer(mib, 2);
    for (const copy of ['eager', 'dirty'] as const) {
      const params = `state_bytes=${mib << 20};copy=${copy};substrate=${substrate}`;
      const base = { variant: 'wasm', function: 'statefill', mode: 'remote-fork', path: scheme, params, unit: 'us' };
      for (let i = -2; i < forkReps; i++) {
        const r = await child.forkFrom(a.endpoint, d, copy, Buffer.from(String(mib)));
        const got = Buffer.from(r.output).toString('utf8');
        if (got !== expected) throw new Error(`remote fork over ${scheme} (${copy}): the child answered "${got.slice(0, 60)}", the parent's next answer is "${expected.slice(0, 60)}"`);
        if (i < 0) continue; // the child's first forks warm it up
        emit({ ...base, metric: 'fork_latency', iteration: i, value: r.forkNs / 1000 });
        emit({ ...base, metric: 'first_response', iteration: i, value: r.firstResponseNs / 1000 });
        emit({ ...base, metric: 'bytes_moved', iteration: i, value: r.bytesMoved, unit: 'B' });
      }
    }
    parent.close();
    child.close();
  } finally {
    await Promise.all([a.stop(), b?.stop()]);
  }
}

/** the harness's verbs loops (C, every sample kept) and perftest on the same two devices */
async function verbs(): Promise<void> {
  const rows = await runMicrobench({ pair: guestPair(), sizes, iters: reps * 5, warmup: reps, perftest: true, extraPolls: ['event', 'js'], timeoutMs: 20 * 60_000 });
  for (const r of rows) {
    const fn = r.metric.replace(/_(latency|bw)$/, '');
    const params = `size=${r.size};poll=${r.poll};substrate=${substrate}`;
    const base = { variant: r.source, function: fn, mode: 'verbs', path: 'rdma', metric: r.metric, params };
    if (r.error) emit({ fail: { phase: `verbs ${r.source} ${r.metric} size=${r.size} poll=${r.poll}`, path: 'rdma', reason: r.error } });
    else if (r.samplesNs) r.samplesNs.forEach((ns, i) => emit({ ...base, iteration: i, value: ns / 1000, unit: 'us' }));
    else if (r.bytesPerSec !== undefined) emit({ ...base, iteration: 0, value: r.bytesPerSec / 1e6, unit: 'MB/s' });
    else if (r.perftest?.kind === 'latency') emit({ ...base, params: `${params};stat=t_typical`, iteration: 0, value: r.perftest.tTypicalUs, unit: 'us' });
    else if (r.perftest?.kind === 'bandwidth') emit({ ...base, params: `${params};stat=bw_avg`, iteration: 0, value: r.perftest.bwAvgMBps, unit: 'MB/s' });
  }
}

const PER_TRANSPORT: Record<string, (scheme: string) => Promise<void>> = { rpc, fork };
const ONCE: Record<string, () => Promise<void>> = { verbs };
for (const phase of phases) {
  const once = ONCE[phase];
  if (!once && !PER_TRANSPORT[phase]) throw new Error(`unknown phase "${phase}"; valid: ${[...Object.keys(ONCE), ...Object.keys(PER_TRANSPORT)].join(', ')}`);
  const runs: [string, () => Promise<void>][] = once ? [['rdma', once]] : transports.map((t) => [t, () => PER_TRANSPORT[phase]!(t)]);
  for (const [scheme, go] of runs) {
    process.stderr.write(`rdma: ${phase} over ${scheme}\n`);
    try {
      await go();
    } catch (e) {
      emit({ fail: { phase, path: scheme, reason: (e as Error).message } });
      process.stderr.write(`rdma: ${phase} over ${scheme} FAILED: ${(e as Error).message}\n`);
    }
  }
}
process.exit(0);

// A chain of wasm function nodes (harness/chains/node-main.ts), each its own process, wired in a line:
//   client --> node 1 --> node 2 --> ... --> node M --> client's sink
// Every node also holds a connection to the client's sink, so a chain of N <= M stages ends at node N
// (the message says how many stages it has). All connections are TCP on 127.0.0.1. With `cgroup`,
// the nodes are spawned inside it (they are in it before exec) and the client creates its own
// sockets (the sink listener and the connection to node 1) while briefly a member, so every socket
// of the chain is born in the cgroup: with the sockmap programs attached there, every hop is an
// sk_msg redirect.
//
// Two modes per call: copy (the payload travels in each message) and descriptor (the payload is
// written once into a shared file in /dev/shm; only 16-byte descriptors travel; each node reads
// the region, runs the function and writes the result back in place).
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { nodeCommand, waitForReady } from '../platform/child-ready.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { buildDir } from '../paths.js';
import { connect } from '../platform/transport.js';
import { insideCgroup } from '../bpf/arm.js';
import { spawnInCgroup } from '../bpf/cgroup.js';
import { HEADER_BYTES, KIND_COPY, KIND_DESC, KIND_ERROR, MAX_PAYLOAD, MAX_STAGES, MessageReader, PAYLOAD_OFFSET, SHM_BYTES, encodeHeader, nowNs, type Header } from './wire.js';

export const chainNodeMain = path.join(buildDir, 'harness', 'chains', 'node-main.js');
export const SHM_DIR = '/dev/shm';
export type ChainMode = 'copy' | 'desc';

export interface ChainOptions {
  /** nodes to start (the longest chain this can run) */
  nodes: number;
  /** a cgroup v2 directory to start the nodes (and create the client's sockets) in */
  cgroupPath?: string;
  /** taskset CPU list for the nodes */
  cpus?: string;
  memoryLimitMiB?: number;
  timeoutMs?: number;
}

export interface ChainResult {
  output: Buffer;
  /** client send -> client receive (ns) */
  e2eNs: number;
  /** hopNs[i-1] for stage i = 1..N: from the previous sender's send to stage i's send; hopNs[N]: stage N's send -> the client has it */
  hopNs: number[];
  /** per stage: receive -> send inside the node (function + copies) */
  stageNs: number[];
}

export interface Chain {
  readonly nodes: number;
  readonly pids: number[];
  readonly shmPath: string;
  /** messages and bytes the client and nodes wrote to chain sockets so far (for the sk_msg proof) */
  readonly sent: { msgs: number; bytes: number };
  call(mode: ChainMode, input: Uint8Array, stages: number): Promise<ChainResult>;
  stop(): Promise<void>;
}

let chainCounter = 0;

/** Starts `nodes` chain nodes. Throws (after cleaning up) when one does not start. */
export async function startChain(opts: ChainOptions): Promise<Chain> {
  if (opts.nodes < 1 || opts.nodes > MAX_STAGES) throw new Error(`a chain has 1..${MAX_STAGES} nodes, not ${opts.nodes}`);
  const tag = `${process.pid}-${++chainCounter}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `fxh-chain-${tag}-`));
  const shmPath = path.join(SHM_DIR, `fxh-chain-${tag}`);
  const children: ChildProcess[] = [];
  const sinkSockets = new Set<net.Socket>();
  let sink: net.Server | null = null;
  let head: net.Socket | null = null;
  let shm = -1;
  let stopped: Promise<void> | null = null;
  const pending = new Map<number, { resolve: (m: { h: Header; body: Buffer | null; t: number }) => void; reject: (e: Error) => void }>();
  const failAll = (e: Error) => {
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  };
  const stop = () =>
    (stopped ??= (async () => {
      failAll(new Error('chain stopped'));
      head?.destroy();
      for (const s of sinkSockets) s.destroy();
      await Promise.all(children.map(async (c) => {
        if (c.exitCode !== null || c.signalCode !== null) return;
        const exited = new Promise<void>((r) => c.once('exit', () => r()));
        c.kill('SIGTERM');
        const t = setTimeout(() => c.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }));
      if (sink) await new Promise<void>((r) => sink!.close(() => r()));
      if (shm >= 0) fs.closeSync(shm);
      fs.rmSync(shmPath, { force: true });
      fs.rmSync(dir, { recursive: true, force: true });
    })());
  const sent = { msgs: 0, bytes: 0 };
  try {
    shm = fs.openSync(shmPath, 'w+', 0o600);
    fs.ftruncateSync(shm, SHM_BYTES);
    const inCg = <T>(f: () => Promise<T>) => (opts.cgroupPath ? insideCgroup(opts.cgroupPath, f) : f());
    // the client's sink: where the last stage (or an error) arrives
    const server = net.createServer({ noDelay: true }, (s) => {
      sinkSockets.add(s);
      s.on('close', () => sinkSockets.delete(s));
      const reader = new MessageReader();
      s.on('data', (chunk: Buffer) => {
        const t = nowNs();
        for (const m of reader.push(chunk)) {
          const p = pending.get(m.h.seq);
          if (!p) continue;
          pending.delete(m.h.seq);
          p.resolve({ ...m, t });
        }
      });
      s.on('error', () => s.destroy());
    });
    sink = server;
    await inCg(() => new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
    }));
    const sinkEndpoint = `tcp:127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    // nodes from the last to the first: each connects to its successor, which already listens
    let nextEndpoint = 'none';
    for (let stage = opts.nodes; stage >= 1; stage--) {
      const args = [chainNodeMain, '--stage', String(stage), '--next', nextEndpoint, '--sink', sinkEndpoint, '--shm', shmPath, '--work-dir', path.join(dir, `node-${stage}`),
        '--memory-mib', String(opts.memoryLimitMiB ?? 256), '--timeout-ms', String(opts.timeoutMs ?? 10_000)];
      const { cmd, argv } = nodeCommand(args, opts.cpus);
      const child = opts.cgroupPath
        ? spawnInCgroup(opts.cgroupPath, cmd, argv, { stdio: ['pipe', 'pipe', 'inherit'] })
        : spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'inherit'] });
      children.push(child);
      const ready = await waitForReady<{ endpoint: string; pid: number }>(child, `chain node ${stage}`);
      nextEndpoint = ready.endpoint;
    }
    head = await inCg(() => connect(nextEndpoint));
    head.on('error', (e) => failAll(e));
    head.on('close', () => failAll(new Error('connection to node 1 closed')));
    // every node has connected to the sink before it said READY; wait until all are accepted
    const until = Date.now() + 5000;
    while (sinkSockets.size < opts.nodes && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    if (sinkSockets.size < opts.nodes) throw new Error(`only ${sinkSockets.size} of ${opts.nodes} nodes connected to the sink`);
    const pids = children.map((c) => c.pid!).reverse();
    let seq = 0;
    const stamps = Buffer.alloc(16 * (MAX_STAGES + 1));
    const timeoutMs = opts.timeoutMs ?? 10_000;
    return {
      nodes: opts.nodes,
      pids,
      shmPath,
      sent,
      async call(mode, input, stages) {
        if (stopped) throw new Error('chain stopped');
        if (stages < 1 || stages > opts.nodes) throw new Error(`this chain has ${opts.nodes} nodes; cannot run ${stages} stages`);
        if (input.length > MAX_PAYLOAD) throw new Error(`payload of ${input.length} bytes exceeds ${MAX_PAYLOAD}`);
        seq = (seq + 1) >>> 0;
        const h: Header = { kind: mode === 'copy' ? KIND_COPY : KIND_DESC, stage: 1, length: stages, seq, offset: PAYLOAD_OFFSET, bytes: input.length };
        let timer: NodeJS.Timeout | undefined;
        const reply = new Promise<{ h: Header; body: Buffer | null; t: number }>((resolve, reject) => {
          pending.set(seq, { resolve, reject });
          timer = setTimeout(() => {
            pending.delete(seq);
            reject(new Error(`chain of ${stages} did not answer within ${timeoutMs} ms`));
          }, timeoutMs);
        });
        let t0: number;
        if (mode === 'desc') {
          // the payload is written once into shared memory; the time to do so counts
          t0 = nowNs();
          fs.writeSync(shm, input, 0, input.length, PAYLOAD_OFFSET);
          head!.write(encodeHeader(h));
        } else {
          const msg = Buffer.allocUnsafe(HEADER_BYTES + input.length);
          encodeHeader(h).copy(msg, 0);
          msg.set(input, HEADER_BYTES);
          t0 = nowNs();
          head!.write(msg);
        }
        const m = await reply.finally(() => clearTimeout(timer));
        let output: Buffer;
        if (m.h.kind === KIND_ERROR) throw new Error(`chain failed: ${m.body!.toString('utf8')}`);
        if (m.h.kind === KIND_DESC) {
          output = Buffer.allocUnsafe(m.h.bytes);
          fs.readSync(shm, output, 0, m.h.bytes, m.h.offset);
        } else output = m.body!;
        const t1 = mode === 'desc' ? nowNs() : m.t;
        const perMsg = (b: number) => HEADER_BYTES + (mode === 'copy' ? b : 0);
        sent.msgs += stages + 1;
        sent.bytes += perMsg(input.length) * (stages + 1); // chainstep keeps the length
        // stamps of this call (side channel in the shared file)
        fs.readSync(shm, stamps, 0, 16 * (stages + 1), 0);
        const sendOf = (k: number) => (k === 0 ? t0 : stamps.readDoubleLE(16 * k + 8));
        const recvOf = (k: number) => stamps.readDoubleLE(16 * k);
        const hopNs: number[] = [];
        const stageNs: number[] = [];
        for (let k = 1; k <= stages; k++) {
          hopNs.push(sendOf(k) - sendOf(k - 1));
          stageNs.push(sendOf(k) - recvOf(k));
        }
        hopNs.push(t1 - sendOf(stages));
        return { output, e2eNs: t1 - t0, hopNs, stageNs };
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** CPU time (ns) of these processes and all their threads: Σ se.sum_exec_runtime of /proc/<pid>/task/<tid>/sched. */
export function processCpuNs(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    let tids: string[];
    try {
      tids = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        const m = /se\.sum_exec_runtime\s*:\s*([\d.]+)/.exec(fs.readFileSync(`/proc/${pid}/task/${tid}/sched`, 'utf8'));
        if (m) total += Number(m[1]) * 1e6; // ms with 6 decimals
      } catch {}
    }
  }
  return total;
}

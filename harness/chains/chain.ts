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
//
// Failures: a node that dies (crash, SIGKILL) breaks the chain. The call in flight and every later
// call fail at once with a ChainError naming the stage, its pid and how it ended; the other nodes
// stay until stop(). A call that gets no answer fails after `timeoutMs` naming the stage that held
// it (from the stamps). stop() ends every node and removes the shared file and the scratch folder;
// an exit hook does the same if this process exits without stop() (Ctrl-C, an uncaught exception);
// if it is killed, its nodes see their stdin close, leave and remove both; staleChainCleanup()
// removes what is left when the nodes were killed too.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { nodeCommand, waitForReady } from '../platform/child-ready.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { buildDir } from '../paths.js';
import { connect } from '../platform/transport.js';
import { pidAlive } from '../platform/proc-memory.js';
import { cleanupStaleScratch } from '../platform/scratch.js';
import { insideCgroup } from '../bpf/arm.js';
import { spawnInCgroup } from '../bpf/cgroup.js';
import { HEADER_BYTES, KIND_COPY, KIND_DESC, KIND_ERROR, MAX_PAYLOAD, MAX_STAGES, MessageReader, PAYLOAD_OFFSET, SHM_BYTES, STAMP_SLOT, encodeHeader, nowNs, readStamp, type Header } from './wire.js';

export const chainNodeMain = path.join(buildDir, 'harness', 'chains', 'node-main.js');
export const SHM_DIR = '/dev/shm';
/** shared files are /dev/shm/fxh-chain-<pid>-<n>, scratch folders <tmpdir>/fxh-chain-<pid>-<n>-XXXXXX */
export const CHAIN_PREFIX = 'fxh-chain-';
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
  /** per stage: receive -> send inside the node (function + copies + stamps) */
  stageNs: number[];
  /** per stage: time inside the function (the wasm variant's elapsedNs, as an executor's serverNs) */
  computeNs: number[];
}

/** A chain call that failed; `stage` is the stage it names, when one is to blame. */
export class ChainError extends Error {
  override name = 'ChainError';
  constructor(message: string, readonly stage?: number) {
    super(message);
  }
}

export interface Chain {
  readonly nodes: number;
  /** pids of the nodes, stage 1 first */
  readonly pids: number[];
  readonly shmPath: string;
  /** the scratch folder of the nodes' work directories */
  readonly dir: string;
  /** messages and bytes the client and nodes wrote to chain sockets so far (for the sk_msg proof) */
  readonly sent: { msgs: number; bytes: number };
  /** set once a node has died: why the chain cannot run any more */
  readonly broken: ChainError | null;
  call(mode: ChainMode, input: Uint8Array, stages: number): Promise<ChainResult>;
  stop(): Promise<void>;
}

let chainCounter = 0;

const how = (code: number | null, sig: NodeJS.Signals | null) => (sig ? `killed by ${sig}` : `exited with code ${code}`);

/** Starts `nodes` chain nodes. Throws (after cleaning up) when one does not start. */
export async function startChain(opts: ChainOptions): Promise<Chain> {
  if (opts.nodes < 1 || opts.nodes > MAX_STAGES) throw new Error(`a chain has 1..${MAX_STAGES} nodes, not ${opts.nodes}`);
  const tag = `${process.pid}-${++chainCounter}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${CHAIN_PREFIX}${tag}-`));
  const shmPath = path.join(SHM_DIR, `${CHAIN_PREFIX}${tag}`);
  const children: { stage: number; child: ChildProcess }[] = [];
  const sinkSockets = new Set<net.Socket>();
  let sink: net.Server | null = null;
  let head: net.Socket | null = null;
  let shm = -1;
  let stopping = false;
  let stopped: Promise<void> | null = null;
  let broken: ChainError | null = null;
  const pending = new Map<number, { resolve: (m: { h: Header; body: Buffer | null; t: number }) => void; reject: (e: Error) => void }>();
  const failAll = (e: Error) => {
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  };
  const breakChain = (e: ChainError) => {
    if (stopping) return;
    broken ??= e;
    failAll(broken);
  };
  // Ctrl-C or a crash of this process: no node, shared file or scratch folder outlives it
  const onExit = () => {
    for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    fs.rmSync(shmPath, { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', onExit);
  const stop = () =>
    (stopped ??= (async () => {
      stopping = true;
      failAll(new ChainError('chain stopped'));
      head?.destroy();
      for (const s of sinkSockets) s.destroy();
      await Promise.all(children.map(async ({ child: c }) => {
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
      process.off('exit', onExit);
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
        let msgs;
        try {
          msgs = reader.push(chunk);
        } catch (e) {
          breakChain(new ChainError(`corrupt message from a chain node: ${(e as Error).message}`));
          s.destroy();
          return;
        }
        for (const m of msgs) {
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
        '--memory-mib', String(opts.memoryLimitMiB ?? 256), '--timeout-ms', String(opts.timeoutMs ?? 10_000), '--cleanup', shmPath, '--cleanup', dir];
      const { cmd, argv } = nodeCommand(args, opts.cpus);
      const child = opts.cgroupPath
        ? spawnInCgroup(opts.cgroupPath, cmd, argv, { stdio: ['pipe', 'pipe', 'inherit'] })
        : spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'inherit'] });
      children.push({ stage, child });
      // a node that ends before stop() breaks the chain (sh and taskset exec: the child is the node)
      child.once('exit', (code, sig) => breakChain(new ChainError(`chain node of stage ${stage} (pid ${child.pid}) ${how(code, sig)}; the chain is broken`, stage)));
      const ready = await waitForReady<{ endpoint: string; pid: number }>(child, `chain node ${stage}`);
      if (ready.pid !== child.pid) throw new Error(`chain node ${stage} reports pid ${ready.pid}, spawned as ${child.pid}: sh/taskset did not exec`);
      nextEndpoint = ready.endpoint;
    }
    head = await inCg(() => connect(nextEndpoint));
    head.on('error', (e) => breakChain(new ChainError(`connection to the node of stage 1 failed: ${e.message}; the chain is broken`, 1)));
    head.on('close', () => breakChain(new ChainError('connection to the node of stage 1 closed; the chain is broken', 1)));
    // every node has connected to the sink before it said READY; wait until all are accepted
    const until = Date.now() + 5000;
    while (sinkSockets.size < opts.nodes && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    if (sinkSockets.size < opts.nodes) throw new Error(`only ${sinkSockets.size} of ${opts.nodes} nodes connected to the sink`);
    if (broken) throw broken;
    const pids = [...children].reverse().map((c) => c.child.pid!);
    let seq = 0;
    const stamps = Buffer.alloc(STAMP_SLOT * (MAX_STAGES + 1));
    const timeoutMs = opts.timeoutMs ?? 10_000;
    /** resolves when the node of `stage` has exited, or after `ms` */
    const exitOf = (stage: number, ms: number) => {
      const c = children.find((x) => x.stage === stage)?.child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        c.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
      });
    };
    /** the last stage (0: none) whose stamp slot carries `seq`, i.e. that passed the request on */
    const reached = (s: number, stages: number) => {
      fs.readSync(shm, stamps, 0, STAMP_SLOT * (stages + 1), 0);
      let k = 0;
      while (k < stages && readStamp(stamps, k + 1).seq === s) k++;
      return k;
    };
    return {
      nodes: opts.nodes,
      pids,
      shmPath,
      dir,
      sent,
      get broken() {
        return broken;
      },
      async call(mode, input, stages) {
        if (stopped) throw new ChainError('chain stopped');
        if (broken) throw broken;
        if (stages < 1 || stages > opts.nodes) throw new Error(`this chain has ${opts.nodes} nodes; cannot run ${stages} stages`);
        if (input.length > MAX_PAYLOAD) throw new Error(`payload of ${input.length} bytes exceeds ${MAX_PAYLOAD}`);
        seq = (seq + 1) >>> 0 || 1;
        const mySeq = seq;
        const h: Header = { kind: mode === 'copy' ? KIND_COPY : KIND_DESC, stage: 1, length: stages, seq: mySeq, offset: PAYLOAD_OFFSET, bytes: input.length };
        let timer: NodeJS.Timeout | undefined;
        const reply = new Promise<{ h: Header; body: Buffer | null; t: number }>((resolve, reject) => {
          pending.set(mySeq, { resolve, reject });
          timer = setTimeout(() => {
            pending.delete(mySeq);
            const k = reached(mySeq, stages);
            const where = k === stages ? `every stage passed it on; the answer from stage ${stages} never reached the client` : `stage ${k + 1} ${k ? `got it from stage ${k}` : 'was sent it'} and never passed it on`;
            reject(new ChainError(`chain of ${stages} stages (${mode}) did not answer within ${timeoutMs} ms: ${where}`, Math.min(k + 1, stages)));
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
        if (m.h.kind === KIND_ERROR) {
          const text = m.body!.toString('utf8');
          const lost = /node of stage (\d+) is unreachable/.exec(text);
          const blamed = lost ?? /^stage (\d+)/.exec(text);
          const e = new ChainError(`chain of ${stages} stages (${mode}) failed: ${text}`, blamed ? Number(blamed[1]) : undefined);
          if (lost) {
            // a node lost its connection to the next one: permanent. When the next node died, its
            // exit (signal, code) is the better reason; the client may learn of it a moment later.
            await exitOf(Number(lost[1]), 1000);
            breakChain(e);
            throw broken ?? e;
          }
          throw e;
        }
        if (m.h.kind === KIND_DESC) {
          output = Buffer.allocUnsafe(m.h.bytes);
          fs.readSync(shm, output, 0, m.h.bytes, m.h.offset);
        } else output = m.body!;
        const t1 = mode === 'desc' ? nowNs() : m.t;
        const perMsg = (b: number) => HEADER_BYTES + (mode === 'copy' ? b : 0);
        sent.msgs += stages + 1;
        sent.bytes += perMsg(input.length) * (stages + 1); // chainstep keeps the length
        // the stamps of this call (side channel in the shared file), checked before they count
        fs.readSync(shm, stamps, 0, STAMP_SLOT * (stages + 1), 0);
        const hopNs: number[] = [];
        const stageNs: number[] = [];
        const computeNs: number[] = [];
        let prevSend = t0;
        for (let k = 1; k <= stages; k++) {
          const s = readStamp(stamps, k);
          if (s.seq !== mySeq) throw new ChainError(`stage ${k} did not stamp request ${mySeq} (its slot holds request ${s.seq}): no per-hop times for this call`, k);
          if (!(s.recvNs >= prevSend && s.sendNs >= s.recvNs && s.computeNs > 0 && s.computeNs <= s.sendNs - s.recvNs)) {
            throw new ChainError(`stage ${k}'s stamps are inconsistent (previous send ${prevSend}, received ${s.recvNs}, compute ${s.computeNs}, sent ${s.sendNs})`, k);
          }
          hopNs.push(s.sendNs - prevSend);
          stageNs.push(s.sendNs - s.recvNs);
          computeNs.push(s.computeNs);
          prevSend = s.sendNs;
        }
        hopNs.push(t1 - prevSend);
        return { output, e2eNs: t1 - t0, hopNs, stageNs, computeNs };
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

export interface SchedTotals {
  /** Σ se.sum_exec_runtime (ns) */
  cpuNs: number;
  /** Σ nr_voluntary_switches: the thread blocked (e.g. waited for a message) */
  voluntary: number;
  /** Σ nr_involuntary_switches: the thread was preempted */
  involuntary: number;
}

/** Scheduler totals of these processes and all their threads, from /proc/<pid>/task/<tid>/sched (threads that ended are not counted). */
export function processSched(pids: readonly number[]): SchedTotals {
  const t: SchedTotals = { cpuNs: 0, voluntary: 0, involuntary: 0 };
  for (const pid of pids) {
    let tids: string[];
    try {
      tids = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      let text: string;
      try {
        text = fs.readFileSync(`/proc/${pid}/task/${tid}/sched`, 'utf8');
      } catch {
        continue;
      }
      const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
      t.cpuNs += num(/se\.sum_exec_runtime\s*:\s*([\d.]+)/) * 1e6; // ms with 6 decimals
      t.voluntary += num(/nr_voluntary_switches\s*:\s*(\d+)/);
      t.involuntary += num(/nr_involuntary_switches\s*:\s*(\d+)/);
    }
  }
  return t;
}

/** CPU time (ns) of these processes and all their threads: Σ se.sum_exec_runtime of /proc/<pid>/task/<tid>/sched. */
export function processCpuNs(pids: readonly number[]): number {
  return processSched(pids).cpuNs;
}

/**
 * Removes the shared files (/dev/shm/fxh-chain-<pid>-*) and scratch folders (<tmpdir>/fxh-chain-<pid>-*)
 * of processes that are gone (a SIGKILLed run), and returns one line per thing removed.
 */
export function staleChainCleanup(dirs: readonly string[] = [SHM_DIR, os.tmpdir()], alive: (pid: number) => boolean = pidAlive): string[] {
  return dirs.flatMap((d) => cleanupStaleScratch(d, alive, { what: 'chain', files: true }));
}

// One executor child process as seen from the gateway: start, invoke with a watchdog, restart, stop.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { killProcessesNaming } from './proc-sweep.js';
import os from 'node:os';
import path from 'node:path';
import type net from 'node:net';
import { ProtocolClient, type InvokeCall, type InvokeReply } from './client.js';
import { connect } from './transport.js';
import { scratchDir } from './scratch.js';
import { launchNode } from './nodes/inventory.js';
import type { Capability } from './variant.js';

export interface ExecutorSpec {
  variant: string;
  memoryLimitMiB: number;
  /** where socket files and the variant's scratch space go */
  runDir: string;
  /** how the gateway reaches the executor: a unix socket in runDir (default), TCP on 127.0.0.1, or
   *  an endpoint to listen on, of any link scheme (e.g. rdma:10.77.0.1:0) */
  transport?: string;
  /** its index in the variant's executor pool (0: the first; others get folders of their own) */
  member?: number;
}

interface Running {
  child: ChildProcess;
  endpoint: string;
  client: ProtocolClient;
  capability: Capability;
  enforcesTimeouts: boolean;
  stderrTail: string[];
  /** its scratch folder: processes it started (a WASM cold-process child) name it on their command line */
  dir: string;
}

/** how long past its own timeout an executor that polices timeouts itself may take to answer */
const SELF_POLICED_GRACE_MS = 10_000;
/** for in-thread variants the watchdog is the only timeout, so it is tight */
const IN_THREAD_GRACE_MS = 50;
const STOP_GRACE_MS = 5_000;

export class ExecutorProcess {
  private running: Promise<Running> | null = null;
  private generation = 0;
  restarts = 0;
  /** timeout bounds of live spliced connections (a multiset: equal bounds are common) */
  private readonly spliceBounds: number[] = [];
  /** absolute deadlines of relayed calls in flight */
  private readonly inFlight = new Set<{ until: number }>();
  /** executors being killed (replaced): stop() must not leave before they are gone */
  private readonly dying = new Map<ChildProcess, Promise<void>>();

  constructor(private readonly spec: ExecutorSpec) {}

  private async start(): Promise<Running> {
    const gen = ++this.generation;
    const name = `${this.spec.variant}${this.spec.member ? `.${this.spec.member}` : ''}-${gen}`;
    const dir = path.join(this.spec.runDir, name);
    fs.mkdirSync(dir, { recursive: true });
    const t = this.spec.transport ?? 'unix';
    const listen = t === 'unix' ? `unix:${path.join(dir, 'executor.sock')}` : t === 'tcp' ? 'tcp:127.0.0.1:0' : t;
    const node = await launchNode({ name, kind: 'local' }, { variants: [this.spec.variant], memoryLimitMiB: this.spec.memoryLimitMiB, listen, workDir: dir }).catch((e: Error) => {
      throw new Error(`executor for ${this.spec.variant}: ${e.message}`);
    });
    try {
      const client = await ProtocolClient.connect(node.endpoint);
      return { child: node.child, endpoint: node.endpoint, client, capability: node.ready.capability, enforcesTimeouts: node.ready.enforcesTimeouts, stderrTail: [], dir };
    } catch (e) {
      node.child.kill('SIGKILL');
      throw e;
    }
  }

  private ensure(): Promise<Running> {
    if (!this.running) {
      const p = this.start();
      this.running = p;
      p.then(
        (r) => r.child.once('exit', () => {
          if (this.running === p) this.running = null;
        }),
        () => {
          if (this.running === p) this.running = null;
        },
      );
    }
    return this.running;
  }

  async capability(): Promise<Capability> {
    return (await this.ensure()).capability;
  }

  /** whether the executor stops overrunning functions itself (else only the watchdog does) */
  async enforcesTimeouts(): Promise<boolean> {
    return (await this.ensure()).enforcesTimeouts;
  }

  async invoke(call: InvokeCall): Promise<InvokeReply> {
    const r = await this.ensure();
    const grace = r.enforcesTimeouts ? SELF_POLICED_GRACE_MS : IN_THREAD_GRACE_MS;
    let timer: NodeJS.Timeout | undefined;
    const watchdog = new Promise<InvokeReply>((resolve) => {
      timer = setTimeout(() => {
        // The function is stuck inside the executor: replace the executor, fail this call.
        this.restarts++;
        void this.kill(r, !r.enforcesTimeouts);
        resolve({ status: 'timeout', output: Buffer.from(`${call.fn} on ${call.variant} did not finish within ${call.timeoutMs} ms; its executor was restarted`), serverNs: 0 });
      }, call.timeoutMs + grace);
    });
    const flight = { until: Date.now() + call.timeoutMs + grace };
    this.inFlight.add(flight);
    const answer = r.client.invoke(call).catch((e: Error): InvokeReply => ({
      status: 'executor-lost',
      output: Buffer.from(`executor for ${call.variant} was lost during the call: ${e.message}`),
      serverNs: 0,
    }));
    try {
      return await Promise.race([answer, watchdog]);
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(flight);
    }
  }

  /** A connection of its own to the executor (started if need be), e.g. for the gateway to splice a client to it. */
  async openConnection(): Promise<{ socket: net.Socket; endpoint: string }> {
    const r = await this.ensure();
    return { socket: await connect(r.endpoint), endpoint: r.endpoint };
  }

  /** Registers a spliced connection whose calls take at most `timeoutMs`; returns its removal. */
  addSplice(timeoutMs: number): () => void {
    this.spliceBounds.push(timeoutMs);
    let live = true;
    return () => {
      if (!live) return;
      live = false;
      this.spliceBounds.splice(this.spliceBounds.indexOf(timeoutMs), 1);
    };
  }

  /**
   * Liveness check for calls the gateway did not see (spliced connections): pings the executor and
   * replaces it when it does not answer in time — a function is holding its thread. "In time" is
   * `deadlineMs`, or longer while another spliced connection or a relayed call may legitimately
   * keep it busy. Resolves true when it answered (or was not running), false when it was replaced.
   */
  async probe(deadlineMs: number, graceMs: number): Promise<boolean> {
    const p = this.running;
    const r = p && (await p.catch(() => null));
    if (!r) return true;
    const now = Date.now();
    const wait = Math.max(deadlineMs, ...this.spliceBounds.map((b) => b + graceMs), ...[...this.inFlight].map((f) => f.until - now));
    try {
      await r.client.ping(wait);
      return true;
    } catch {
      if (r.child.exitCode !== null || r.child.signalCode !== null) return true;
      this.restarts++;
      await this.kill(r, true);
      return false;
    }
  }

  /**
   * SIGTERM lets the executor tear its variant down (containers, processes); SIGKILL if it cannot.
   * `held`: a function holds the executor's thread, so it could not run its SIGTERM handler (a
   * JavaScript callback) anyway: SIGKILL at once. Only in-thread variants get there; what they
   * started (a WASM cold-process child) names the executor's folder and is killed after it.
   */
  private async kill(r: Running, held = false): Promise<void> {
    if (this.running && (await this.running.catch(() => null)) === r) this.running = null;
    r.client.close();
    if (r.child.exitCode !== null || r.child.signalCode !== null) return;
    const known = this.dying.get(r.child);
    if (known) return known;
    const exited = new Promise<void>((res) => r.child.once('exit', () => res()));
    r.child.kill(held ? 'SIGKILL' : 'SIGTERM');
    const t = setTimeout(() => r.child.kill('SIGKILL'), STOP_GRACE_MS);
    const gone = exited.then(() => {
      clearTimeout(t);
      killProcessesNaming(r.dir);
      this.dying.delete(r.child);
    });
    this.dying.set(r.child, gone);
    return gone;
  }

  async stop(): Promise<void> {
    const p = this.running;
    this.running = null;
    const r = p && (await p.catch(() => null));
    // an executor already being replaced gets no more grace: this gateway is going away
    for (const child of this.dying.keys()) child.kill('SIGKILL');
    // a function running in the executor's thread cannot let a SIGTERM handler run: no grace for it
    const held = r !== null && !r.enforcesTimeouts && this.inFlight.size > 0;
    await Promise.all([r ? this.kill(r, held) : undefined, ...this.dying.values()]);
  }
}

/** A gateway's run folder (sockets, executors' scratch space): scratchDir('gw'), or a given prefix (tests). */
export function makeRunDir(prefix?: string): string {
  return prefix ? fs.mkdtempSync(path.join(os.tmpdir(), prefix)) : scratchDir('gw');
}

// The gateway: accepts invocations over HTTP and over the binary protocol, routes each to the
// executor process of its variant, and answers with the executor's reply; a chain frame makes it
// call a function N times, each output the next input (function chains). Given a Splicer, it can
// also hand a binary client's connection to an executor in the kernel (splice frames): it still
// chooses the executor and cleans up, but no longer relays the bytes.
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { loadVariantPlugins } from './registry.js';
import type { VariantPlugin } from './variant.js';
import { ExecutorProcess, makeRunDir } from './executor-process.js';
import { chainAnswerFrame, encodeResponse, errorResponse, responseFrame, type ChainFrame, type FrameBytes, type StageTiming, type Status } from './protocol.js';
import { listenLinks, type Link } from './link.js';
import type { Splicer } from './splice.js';
import type { Listener } from './transport.js';
import type { InvokeCall, InvokeReply } from './client.js';
import type { Mode } from './variant.js';
import { declaredModes } from './modes.js';

export interface GatewayOptions {
  /** binary protocol endpoint, e.g. unix:/tmp/gw.sock or tcp:127.0.0.1:0 */
  binary?: string;
  /** HTTP listen address host:port (port 0 picks one) */
  http?: string;
  memoryLimitMiB?: number;
  /** default timeout for HTTP calls that give none */
  defaultTimeoutMs?: number;
  /** joins client and executor connections in the kernel; without one, splice frames are refused */
  splicer?: Splicer;
  /** how executors are reached when their variant does not require a transport: unix (default),
   *  tcp, or an endpoint of any link scheme for them to listen on (e.g. rdma:10.77.0.1:0) */
  executorTransport?: string;
  /** executors per variant (default 1); calls go to the one with the fewest calls in flight */
  poolSize?: number;
}

/** how long past a spliced connection's timeout bound the executor may take to answer a ping */
const SPLICE_PROBE_GRACE_MS = 200;

const HTTP_STATUS: Record<Status, number> = {
  ok: 200,
  'bad-request': 400,
  'invalid-module': 422,
  'function-error': 502,
  unavailable: 503,
  timeout: 504,
  'memory-limit': 507,
  'executor-lost': 502,
};

export class Gateway {
  /** per variant, its pool of executors (started on first use) */
  private readonly executors = new Map<string, ExecutorProcess[]>();
  /** calls in flight per executor, to balance a pool */
  private readonly load = new Map<ExecutorProcess, number>();
  /** per variant, the pool index picked last */
  private readonly picked = new Map<string, number>();
  private readonly listeners: Listener[] = [];
  /** executor-side connections of live splices, closed with the gateway */
  private readonly spliced = new Set<net.Socket>();
  private httpServer: http.Server | null = null;
  readonly runDir = makeRunDir();
  binaryEndpoint: string | null = null;
  httpUrl: string | null = null;

  private constructor(private readonly opts: GatewayOptions, private readonly variantNames: string[], private readonly plugins: Map<string, VariantPlugin> = new Map()) {}

  static async start(opts: GatewayOptions): Promise<Gateway> {
    const plugins = await loadVariantPlugins();
    const gw = new Gateway(opts, [...plugins.keys()], plugins);
    if (opts.binary) {
      const l = await listenLinks(opts.binary, (link) => gw.serveBinary(link));
      gw.listeners.push(l);
      gw.binaryEndpoint = l.endpoint;
    }
    if (opts.http) await gw.startHttp(opts.http);
    return gw;
  }

  private pool(variant: string): ExecutorProcess[] | null {
    if (!this.variantNames.includes(variant)) return null;
    let pool = this.executors.get(variant);
    if (!pool) {
      const transport = this.plugins.get(variant)?.executor?.transport ?? this.opts.executorTransport;
      pool = Array.from({ length: Math.max(1, this.opts.poolSize ?? 1) }, (_, member) => new ExecutorProcess({ variant, memoryLimitMiB: this.opts.memoryLimitMiB ?? 256, runDir: this.runDir, transport, member }));
      this.executors.set(variant, pool);
    }
    return pool;
  }

  /** the first executor of the variant's pool */
  executor(variant: string): ExecutorProcess | null {
    return this.pool(variant)?.[0] ?? null;
  }

  /** the pool member with the fewest calls in flight; among equals, the next after the last one picked, so
   *  calls that each end before the next arrives still take turns */
  private pick(variant: string): ExecutorProcess | null {
    const pool = this.pool(variant);
    if (!pool) return null;
    const from = ((this.picked.get(variant) ?? -1) + 1) % pool.length;
    let best = from;
    for (let k = 1; k < pool.length; k++) {
      const i = (from + k) % pool.length;
      if ((this.load.get(pool[i]!) ?? 0) < (this.load.get(pool[best]!) ?? 0)) best = i;
    }
    this.picked.set(variant, best);
    return pool[best]!;
  }

  async route(call: InvokeCall): Promise<InvokeReply> {
    const e = this.pick(call.variant);
    if (!e) return reply('bad-request', `unknown variant "${call.variant}"; valid variants: ${this.variantNames.join(', ')}`);
    this.load.set(e, (this.load.get(e) ?? 0) + 1);
    try {
      return await e.invoke(call);
    } catch (err) {
      return reply('unavailable', `variant ${call.variant}: ${(err as Error).message}`);
    } finally {
      this.load.set(e, this.load.get(e)! - 1);
    }
  }

  private serveBinary(link: Link): void {
    link.onFrames((frames) => {
      for (const f of frames) {
        if (f instanceof Error) {
          link.send(errorResponse(0, 'bad-request', f.message));
          continue;
        }
        if (f.type === 'splice') {
          if (link.socket) void this.splice(link.socket, f.id, f.variant, f.timeoutMs);
          else link.send(errorResponse(f.id, 'unavailable', `a ${link.peer.split(':')[0]} connection cannot be spliced: splicing joins two TCP sockets in the kernel`));
          continue;
        }
        if (f.type === 'chain') {
          void this.chain(f).then((bytes) => link.send(bytes));
          continue;
        }
        if (f.type !== 'invoke') continue;
        const id = f.id;
        // the payload is a view into a buffer the reader no longer touches: it goes on uncopied
        const call: InvokeCall = { variant: f.variant, fn: f.fn, mode: f.mode, timeoutMs: f.timeoutMs, input: f.payload };
        void this.route(call).then((r) => link.send(responseFrame({ id, status: r.status, serverNs: r.serverNs, payload: r.output })));
      }
    });
  }

  /**
   * Runs a chain frame: `stages` calls routed one after the other, each output the next input, the
   * gateway timing each round trip to the executor. The first stage that fails ends the chain and
   * its status is the answer, its message prefixed with the stage.
   */
  private async chain(f: ChainFrame): Promise<Buffer | FrameBytes> {
    const timings: StageTiming[] = [];
    let x: Uint8Array = f.payload;
    for (let i = 1; i <= f.stages; i++) {
      const t0 = process.hrtime.bigint();
      const r = await this.route({ variant: f.variant, fn: f.fn, mode: f.mode, timeoutMs: f.timeoutMs, input: x });
      const hopNs = Number(process.hrtime.bigint() - t0);
      if (r.status !== 'ok') return errorResponse(f.id, r.status, `stage ${i} of ${f.stages}: ${Buffer.from(r.output).toString('utf8')}`);
      timings.push({ hopNs, serverNs: r.serverNs });
      x = r.output;
    }
    return chainAnswerFrame(f.id, timings, x);
  }

  /**
   * Joins `socket` (a binary client) to a dedicated connection to the executor of `variant` through
   * the Splicer, then answers ok on `socket`. Either side closing undoes the join and closes the
   * other; when the client goes, the executor is probed, since a call the gateway never saw may
   * still hold it (the client stops overrunning calls by closing: ProtocolClient.splice).
   */
  private async splice(socket: net.Socket, id: number, variant: string, timeoutMs: number): Promise<void> {
    const answer = (status: Status, message: string) => {
      if (!socket.writable) return;
      socket.write(status === 'ok' ? encodeResponse({ id, status, serverNs: 0, payload: Buffer.from(message) }) : errorResponse(id, status, message));
    };
    const splicer = this.opts.splicer;
    if (!splicer) return answer('unavailable', 'this gateway does not splice connections: it was started without a splicer (the sockmap fast path gives it one, see harness/bpf/arm.ts)');
    const e = this.executor(variant);
    if (!e) return answer('bad-request', `unknown variant "${variant}"; valid variants: ${this.variantNames.join(', ')}`);
    let conn: { socket: net.Socket; endpoint: string };
    try {
      conn = await e.openConnection();
    } catch (err) {
      return answer('unavailable', `variant ${variant}: ${(err as Error).message}`);
    }
    const upstream = conn.socket;
    // the client may have gone while we connected: then its close event has passed already
    const clientGone = () => {
      if (!socket.destroyed) return false;
      upstream.destroy();
      return true;
    };
    if (clientGone()) return;
    let undo: () => void;
    try {
      undo = splicer.join(socket, upstream);
    } catch {
      // The executor's end of a fresh connection is registered by the kernel when it sees the
      // handshake's last ACK, which may trail our connect() by a moment: one more try.
      await new Promise((r) => setTimeout(r, 5));
      if (clientGone()) return;
      try {
        undo = splicer.join(socket, upstream);
      } catch (err) {
        upstream.destroy();
        return answer('unavailable', `cannot splice to the ${variant} executor at ${conn.endpoint} with the ${splicer.describe}: ${(err as Error).message}`);
      }
    }
    this.spliced.add(upstream);
    const unregister = e.addSplice(timeoutMs);
    let ended = false;
    const end = (clientGone: boolean) => {
      if (ended) return;
      ended = true;
      try {
        undo();
      } catch (err) {
        process.stderr.write(`gateway: undoing a splice to ${variant} failed: ${(err as Error).message}\n`);
      }
      this.spliced.delete(upstream);
      unregister();
      upstream.destroy();
      socket.destroy();
      if (clientGone) void e.probe(timeoutMs + SPLICE_PROBE_GRACE_MS, SPLICE_PROBE_GRACE_MS);
    };
    // Bytes that still reach the gateway (a join whose target vanished falls back to the peer)
    // are relayed: requests through route() above, answers here.
    upstream.on('data', (d: Buffer) => socket.writable && socket.write(d));
    upstream.on('error', () => upstream.destroy());
    upstream.on('close', () => end(false));
    socket.on('close', () => end(true));
    answer('ok', `spliced to the ${variant} executor at ${conn.endpoint} by the ${splicer.describe}`);
  }

  private async startHttp(address: string): Promise<void> {
    const i = address.lastIndexOf(':');
    const host = address.slice(0, i);
    const port = Number(address.slice(i + 1));
    const server = http.createServer((req, res) => void this.handleHttp(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.httpServer = server;
    this.httpUrl = `http://${host}:${(server.address() as net.AddressInfo).port}`;
  }

  private async handleHttp(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://gateway');
    const send = (code: number, body: string | Uint8Array, type = 'text/plain; charset=utf-8', headers: Record<string, string> = {}) => {
      res.writeHead(code, { 'content-type': type, ...headers });
      res.end(body);
    };
    if (req.method === 'GET' && url.pathname === '/healthz') return send(200, 'ok\n');
    if (req.method === 'GET' && url.pathname === '/variants') {
      const out: Record<string, unknown> = {};
      for (const v of this.variantNames) out[v] = await this.executor(v)!.capability().catch((e: Error) => ({ ok: false, reason: e.message }));
      return send(200, JSON.stringify(out, null, 2) + '\n', 'application/json');
    }
    const m = /^\/invoke\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (req.method !== 'POST' || !m) {
      return send(404, `routes: POST /invoke/<variant>/<function>?mode=${declaredModes().map((d) => d.id).join('|')}&timeout=<ms>, GET /variants, GET /healthz\n`);
    }
    const mode = (url.searchParams.get('mode') ?? 'warm') as Mode;
    const variantName = decodeURIComponent(m[1]!);
    const modes = this.plugins.get(variantName)?.modes.map((d) => d.id);
    if (modes && !modes.includes(mode)) return send(400, `unknown mode "${mode}" of variant ${variantName}; valid modes: ${modes.join(', ')}\n`);
    const timeoutMs = Number(url.searchParams.get('timeout') ?? this.opts.defaultTimeoutMs ?? 10_000);
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) return send(400, 'timeout must be a positive number of milliseconds\n');
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const r = await this.route({ variant: variantName, fn: decodeURIComponent(m[2]!), mode, timeoutMs, input: Buffer.concat(chunks) });
    const headers = { 'x-fxh-status': r.status, 'x-fxh-server-ns': String(Math.round(r.serverNs)) };
    if (r.status === 'ok') return send(200, r.output, 'application/octet-stream', headers);
    return send(HTTP_STATUS[r.status], Buffer.concat([Buffer.from(r.output), Buffer.from('\n')]), 'text/plain; charset=utf-8', headers);
  }

  /** Restarts of executors after timeouts, per variant. */
  restarts(): Record<string, number> {
    return Object.fromEntries([...this.executors].map(([k, pool]) => [k, pool.reduce((n, e) => n + e.restarts, 0)]));
  }

  async close(): Promise<void> {
    for (const s of this.spliced) s.destroy();
    await Promise.allSettled(this.listeners.map((l) => l.close()));
    if (this.httpServer) {
      this.httpServer.closeAllConnections();
      await new Promise<void>((r) => this.httpServer!.close(() => r()));
    }
    await Promise.allSettled([...this.executors.values()].flat().map((e) => e.stop()));
    fs.rmSync(this.runDir, { recursive: true, force: true });
  }
}

function reply(status: Status, message: string): InvokeReply {
  return { status, output: Buffer.from(message), serverNs: 0 };
}

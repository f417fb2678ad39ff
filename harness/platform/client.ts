// A protocol client: many invocations in flight on one connection, matched by id.
import { connectLink, type Link } from './link.js';
import { SEPARATE_PAYLOAD_BYTES, chainFrame, encodePing, encodeSplice, invokeFrame, parseChainAnswer, type FrameBytes, type ResponseFrame, type StageTiming, type Status } from './protocol.js';
import type { Mode } from './variant.js';

export interface InvokeCall {
  variant: string;
  fn: string;
  mode: Mode;
  /** a large input is written to the socket uncopied: leave it unchanged until the call is answered */
  input: Uint8Array;
  timeoutMs: number;
}

export interface InvokeReply {
  status: Status;
  output: Uint8Array;
  /** time inside the executor (ns) */
  serverNs: number;
}

export interface ChainReply {
  status: Status;
  /** the last stage's output, or the error message */
  output: Uint8Array;
  /** per stage, as the gateway timed it (empty unless ok) */
  stages: StageTiming[];
}

/** how long past its timeout a call on a spliced connection may take before the client gives up */
export const SPLICED_GRACE_MS = 200;

export class ProtocolClient {
  private nextId = 1;
  private pending = new Map<number, { resolve: (r: ResponseFrame) => void; reject: (e: Error) => void }>();
  private closedError: Error | null = null;
  /** set once the gateway has joined this connection to an executor in the kernel */
  private splicedTo: { variant: string; timeoutMs: number } | null = null;

  private constructor(private readonly link: Link) {
    link.onFrames((frames) => {
      for (const f of frames) {
        if (f instanceof Error || f.type !== 'response') continue;
        const p = this.pending.get(f.id);
        if (!p) continue;
        this.pending.delete(f.id);
        // The payload is a view into a buffer nothing writes again. A small one is copied so that
        // it does not keep a whole socket chunk alive; a large one is most of its buffer anyway.
        p.resolve(f.payload.length < SEPARATE_PAYLOAD_BYTES ? { ...f, payload: Uint8Array.prototype.slice.call(f.payload) } : f);
      }
    });
    link.onClose((why) => this.fail(why ?? new Error('connection closed')));
  }

  /** over any link transport: the endpoint's scheme (unix:, tcp:, rdma: …) chooses it */
  static async connect(endpoint: string): Promise<ProtocolClient> {
    return new ProtocolClient(await connectLink(endpoint));
  }

  private fail(e: Error) {
    this.closedError ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  get inFlight(): number {
    return this.pending.size;
  }

  private send(frame: (id: number) => Buffer | FrameBytes): Promise<ResponseFrame> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    if (this.nextId > 0xffffffff) this.nextId = 1;
    return new Promise<ResponseFrame>((resolve, reject) => {
      const bytes = frame(id); // a frame that cannot be encoded leaves nothing pending
      this.pending.set(id, { resolve, reject });
      this.link.send(bytes);
    });
  }

  invoke(call: InvokeCall): Promise<InvokeReply> {
    if (this.splicedTo) return this.invokeSpliced(call, this.splicedTo);
    return this.send((id) => invokeFrame({ id, ...call, payload: call.input })).then((r) => ({ status: r.status, output: r.payload, serverNs: r.serverNs }));
  }

  /**
   * Asks the gateway to run a chain of `stages` calls of the function, each output the next input,
   * and to answer with the last output and each stage's timing. Every hop goes through the gateway
   * (executor -> gateway -> executor); the client sends the input once and gets the output once.
   */
  chain(call: InvokeCall, stages: number): Promise<ChainReply> {
    if (this.splicedTo) return Promise.reject(new Error('a spliced connection reaches one executor, not the gateway: chains need a connection of their own'));
    return this.send((id) => chainFrame({ id, ...call, payload: call.input, stages })).then((r) => {
      if (r.status !== 'ok') return { status: r.status, output: r.payload, stages: [] };
      return { status: r.status, ...parseChainAnswer(r.payload) };
    });
  }

  /**
   * Asks the gateway to join this connection to an executor of `variant` in the kernel (a Splicer:
   * the sockmap fast path). Afterwards calls go to that executor without passing through the
   * gateway process, so the gateway's watchdog cannot see them: this client stops a call that
   * overruns its timeout (at most `timeoutMs`) itself, by closing the connection, and the gateway
   * then checks the executor and replaces it if a function holds it. Rejects with the gateway's
   * reason when it cannot splice (no splicer, unknown variant, executor not on TCP).
   */
  async splice(variant: string, timeoutMs: number): Promise<void> {
    if (this.splicedTo) throw new Error(`this connection is already spliced to ${this.splicedTo.variant}`);
    if (this.pending.size) throw new Error('splice before any call is in flight: answers relayed by the gateway and answers from the executor must not interleave');
    const r = await this.send((id) => encodeSplice({ id, timeoutMs, variant }));
    if (r.status !== 'ok') throw new Error(`gateway refused to splice to ${variant} (${r.status}): ${Buffer.from(r.payload).toString('utf8')}`);
    this.splicedTo = { variant, timeoutMs };
  }

  get spliced(): boolean {
    return this.splicedTo !== null;
  }

  private invokeSpliced(call: InvokeCall, to: { variant: string; timeoutMs: number }): Promise<InvokeReply> {
    if (call.variant !== to.variant) return Promise.reject(new Error(`this connection is spliced to ${to.variant}, not ${call.variant}`));
    if (call.timeoutMs > to.timeoutMs) return Promise.reject(new Error(`a call on this spliced connection may take at most ${to.timeoutMs} ms (asked ${call.timeoutMs})`));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<InvokeReply>((resolve) => {
      timer = setTimeout(() => {
        this.close();
        resolve({
          status: 'timeout',
          output: Buffer.from(`${call.fn} on ${call.variant} did not answer within ${call.timeoutMs} ms on a spliced connection; the client closed it, and the gateway replaces the executor if the function still holds it`),
          serverNs: 0,
        });
      }, call.timeoutMs + SPLICED_GRACE_MS);
    });
    const answer = this.send((id) => invokeFrame({ id, ...call, payload: call.input })).then((r) => ({ status: r.status, output: r.payload, serverNs: r.serverNs }));
    return Promise.race([answer, deadline]).finally(() => clearTimeout(timer));
  }

  /** Resolves when the other end answers a ping; rejects after `timeoutMs` or when the connection fails. */
  ping(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      this.send((id) => encodePing(id)).then(() => undefined),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer to a ping within ${timeoutMs} ms`)), timeoutMs))),
    ]).finally(() => clearTimeout(timer));
  }

  close(): void {
    this.link.close();
  }
}

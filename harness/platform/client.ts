// A protocol client: many invocations in flight on one connection, matched by id.
import type net from 'node:net';
import { connect } from './transport.js';
import { encodeInvoke, onFrames, type ResponseFrame, type Status } from './protocol.js';
import type { Mode } from './variant.js';

export interface InvokeCall {
  variant: string;
  fn: string;
  mode: Mode;
  input: Uint8Array;
  timeoutMs: number;
}

export interface InvokeReply {
  status: Status;
  output: Uint8Array;
  /** time inside the executor (ns) */
  serverNs: number;
}

export class ProtocolClient {
  private nextId = 1;
  private pending = new Map<number, { resolve: (r: ResponseFrame) => void; reject: (e: Error) => void }>();
  private closedError: Error | null = null;

  private constructor(private socket: net.Socket) {
    onFrames(socket, (frames) => {
      for (const f of frames) {
        if (f instanceof Error || f.type !== 'response') continue;
        const p = this.pending.get(f.id);
        if (!p) continue;
        this.pending.delete(f.id);
        // copy: the frame body is a view into a buffer the reader may reuse
        p.resolve({ ...f, payload: Uint8Array.prototype.slice.call(f.payload) });
      }
    });
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  static async connect(endpoint: string): Promise<ProtocolClient> {
    return new ProtocolClient(await connect(endpoint));
  }

  private fail(e: Error) {
    this.closedError ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  get inFlight(): number {
    return this.pending.size;
  }

  invoke(call: InvokeCall): Promise<InvokeReply> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    if (this.nextId > 0xffffffff) this.nextId = 1;
    return new Promise<ResponseFrame>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.write(encodeInvoke({ id, ...call, payload: call.input }));
    }).then((r) => ({ status: r.status, output: r.payload, serverNs: r.serverNs }));
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }
}

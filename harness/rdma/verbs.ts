// RC connections over rdma_cm, memory registrations and work requests: the JS face of the shim.
// A connection's close frees its queue pair and every memory registration made on it.
import os from 'node:os';
import { S, callAsync, errBuf, errText, tryShim, type Ptr } from './ffi.js';
import { dispatcher, type Watched } from './dispatch.js';

export const OP = { send: 0, write: 1, read: 2 } as const;
export type Op = keyof typeof OP;
const OP_NAMES = ['SEND', 'RDMA_WRITE', 'RDMA_READ', 'RECV'];
/** ibv_wc_opcode values as the shim reports them */
export const WC = { send: 0, write: 1, read: 2, recv: 128 } as const;
const WC_FLUSH = 5; // IBV_WC_WR_FLUSH_ERR

/** The RDMA devices here, or why there are none. */
export function rdmaDevices(): { devices: string[] } | { error: string } {
  const r = tryShim();
  if ('error' in r) return { error: r.error };
  const names = Buffer.alloc(4096);
  const n = r.shim.fxh_devices(names, names.length);
  if (n < 0) return { error: `no RDMA device on this machine (ibv_get_device_list: ${errnoName(-n)}: the kernel offers no RDMA (uverbs) support)` };
  if (n === 0) return { error: 'no RDMA device on this machine (ibv_get_device_list found none: no RDMA NIC and no SoftRoCE/rxe device; see `rdma link`)' };
  return { devices: errText(names).split(',') };
}

function errnoName(n: number): string {
  const name = Object.entries(os.constants.errno).find(([, v]) => v === n)?.[0];
  return name ? `${name} (errno ${n})` : `errno ${n}`;
}

export class RdmaError extends Error {
  override name = 'RdmaError';
}

function fail(what: string, err: Buffer): never {
  throw new RdmaError(`${what}: ${errText(err) || 'failed'}`);
}

export interface Mr {
  slot: number;
  lkey: number;
  rkey: number;
  /** the registered memory's address, what a peer's one-sided operation names */
  addr: bigint;
  bytes: Uint8Array;
}

export interface Completion {
  wrId: bigint;
  status: number;
  opcode: number;
  vendorErr: number;
  byteLen: number;
}

let nextId = 1;

export interface ConnOptions {
  /** send and receive queue depth */
  depth?: number;
  timeoutMs?: number;
}

/** One RC queue pair and what hangs off it (protection domain, CQ, memory registrations). */
export class VerbsConn {
  readonly id = nextId++;
  private closed = false;
  private readonly mrs = new Map<number, Mr>();
  private readonly pollBuf = new BigUint64Array(32 * 4);
  /** for the dispatcher, once watch() was called */
  private watched: Watched | null = null;

  constructor(
    private readonly ptr: Ptr,
    /** the peer's private data of the connection handshake */
    public peerData: Buffer,
  ) {}

  get qpn(): number {
    const out = new Uint32Array(4);
    S().fxh_conn_info(this.ptr, out);
    return out[0]!;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** the raw pointer, for the benchmark loops */
  get handle(): Ptr {
    if (this.closed) throw new RdmaError(`the connection (QP 0x${this.qpn.toString(16)}) is closed`);
    return this.ptr;
  }

  /** Registers `bytes` (in place: the memory must stay alive, which this object ensures until dereg/close). */
  reg(bytes: Uint8Array, remote: { read?: boolean; write?: boolean } = {}): Mr {
    const keys = new Uint32Array(2);
    const err = errBuf();
    const slot = S().fxh_reg(this.handle, bytes, bytes.length, (remote.read ? 1 : 0) | (remote.write ? 2 : 0), keys, err, err.length);
    if (slot < 0) fail(`registering ${bytes.length} bytes`, err);
    const mr = { slot, lkey: keys[0]!, rkey: keys[1]!, addr: S().fxh_mr_addr(this.ptr, slot), bytes };
    this.mrs.set(slot, mr);
    return mr;
  }

  dereg(mr: Mr): void {
    if (this.closed || !this.mrs.delete(mr.slot)) return;
    S().fxh_dereg(this.ptr, mr.slot);
  }

  /** memory registrations alive on this connection (the shim's count) */
  mrCount(): number {
    return this.closed ? 0 : S().fxh_mr_count(this.ptr);
  }

  postRecv(wrId: bigint, mr: Mr, offset: number, length: number): void {
    const r = S().fxh_post_recv(this.handle, wrId, mr.slot, offset, length);
    if (r) throw new RdmaError(`QP 0x${this.qpn.toString(16)}: posting RECV (wr_id ${wrId}): errno ${r}`);
  }

  /** SEND (to the peer's next posted receive), RDMA WRITE or READ (at raddr under rkey) */
  post(op: Op, wrId: bigint, mr: Mr, offset: number, length: number, raddr = 0n, rkey = 0, signaled = true): void {
    const r = S().fxh_post(this.handle, OP[op], wrId, mr.slot, offset, length, raddr, rkey, signaled ? 1 : 0);
    if (r) throw new RdmaError(`QP 0x${this.qpn.toString(16)}: posting ${OP_NAMES[OP[op]]} (wr_id ${wrId}): errno ${r}`);
  }

  /** Completions now on the CQ (busy polling is calling this in a loop). */
  poll(): Completion[] {
    if (this.closed) return [];
    const n = S().fxh_poll(this.ptr, this.pollBuf, 32);
    const out: Completion[] = [];
    for (let i = 0; i < n; i++) {
      const w = this.pollBuf[i * 4 + 1]!;
      out.push({ wrId: this.pollBuf[i * 4]!, status: Number(w & 0xffn), opcode: Number((w >> 8n) & 0xffffffn), vendorErr: Number(w >> 32n), byteLen: Number(this.pollBuf[i * 4 + 2]!) });
    }
    return out;
  }

  /** The error text of a failed completion: the QP, the work request and the status. */
  describe(c: Completion, op: string): string {
    return `QP 0x${this.qpn.toString(16)}: work request ${op} (wr_id ${c.wrId}) failed: ${S().fxh_wc_status_str(c.status)} (status ${c.status}, vendor_err 0x${c.vendorErr.toString(16)})`;
  }

  isFlush(c: Completion): boolean {
    return c.status === WC_FLUSH;
  }

  /** One operation, posted and busy-waited in C (no JS per poll). Rejects naming the QP and work request. */
  async op(op: Op, mr: Mr, offset: number, length: number, raddr = 0n, rkey = 0, timeoutMs = 5000): Promise<void> {
    const err = errBuf();
    const r = await callAsync(S().fxh_op, this.handle, OP[op], mr.slot, offset, length, raddr, rkey, timeoutMs, err, err.length);
    if (r !== 0) throw new RdmaError(errText(err));
  }

  /**
   * Event-driven completions: `onCq` when the completion channel fires (then poll), `onCm` with the
   * name of each connection-manager event (RDMA_CM_EVENT_DISCONNECTED, …).
   */
  watch(handlers: { onCq: () => void; onCm: (event: string) => void }): void {
    const err = errBuf();
    if (S().fxh_watch(this.handle, err, err.length)) fail('watching the connection', err);
    this.watched = {
      onCq: () => {
        if (this.closed) return;
        S().fxh_rearm(this.ptr);
        handlers.onCq();
      },
      onCm: () => {
        for (;;) {
          if (this.closed) return;
          const t = S().fxh_cm_event(this.ptr);
          if (t < 0) return;
          handlers.onCm(S().fxh_cm_event_str(t));
        }
      },
    };
    dispatcher().add(this.id, this.watched);
  }

  /** Disconnects, destroys the QP and frees every memory registration. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.watched) dispatcher().remove(this.id);
    this.mrs.clear();
    S().fxh_conn_close(this.ptr);
  }
}

/** Connects to an rdma_cm listener at ip:port; `setup` registers memory and posts receives before the connection is made. */
export async function connectVerbs(ip: string, port: number, pdata: Buffer, setup: (c: VerbsConn) => void = () => {}, opts: ConnOptions = {}): Promise<VerbsConn> {
  const err = errBuf();
  const timeoutMs = opts.timeoutMs ?? 5000;
  const id = nextId++;
  const ptr = await callAsync(S().fxh_resolve, id, ip, port, opts.depth ?? 64, timeoutMs, err, err.length);
  if (!ptr) fail(`connecting to rdma:${ip}:${port}`, err);
  const peer = Buffer.alloc(56);
  const conn = new VerbsConn(ptr, peer);
  try {
    setup(conn);
    const r = await callAsync(S().fxh_connect, ptr, pdata, pdata.length, timeoutMs, err, err.length);
    if (r !== 0) fail(`connecting to rdma:${ip}:${port}`, err);
    conn.peerData = peer.subarray(0, S().fxh_peer_data(ptr, peer));
    return conn;
  } catch (e) {
    conn.close();
    throw e;
  }
}

export interface Request {
  /** the connecting side's private data */
  peerData: Buffer;
  conn: VerbsConn;
  /** accepts with this side's private data; resolves once the connection is established */
  accept(pdata: Buffer): Promise<VerbsConn>;
}

/** An rdma_cm listener; connection requests come to `onRequest` (refused when it throws). */
export class VerbsListener {
  readonly id = nextId++;
  private closed = false;
  readonly port: number;
  private readonly ptr: Ptr;

  constructor(
    readonly ip: string,
    port: number,
    private readonly onRequest: (r: Request) => void,
    private readonly depth = 64,
  ) {
    const bound = new Int32Array(1);
    const err = errBuf();
    const p = S().fxh_listen(this.id, ip, port, bound, err, err.length);
    if (!p) fail(`listening on rdma:${ip}:${port}`, err);
    this.ptr = p;
    this.port = bound[0]!;
    dispatcher().add(this.id, { onCm: () => this.drain(), onCq: () => {} });
  }

  private drain(): void {
    for (;;) {
      if (this.closed) return;
      const err = errBuf();
      const p = S().fxh_get_request(this.ptr, this.depth, 0, err, err.length);
      if (!p) {
        if (errText(err) === 'none') return;
        if (errText(err).startsWith('ignored')) continue;
        process.emitWarning(`rdma listener ${this.ip}:${this.port}: ${errText(err)}`);
        return;
      }
      const peer = Buffer.alloc(56);
      const n = S().fxh_peer_data(p, peer);
      const conn = new VerbsConn(p, peer.subarray(0, n));
      const request: Request = {
        peerData: conn.peerData,
        conn,
        accept: async (pdata) => {
          const e = errBuf();
          if (S().fxh_accept(p, conn.id, pdata, pdata.length, e, e.length)) fail('accepting', e);
          const r = await callAsync(S().fxh_wait_established, p, 5000, e, e.length);
          if (r !== 0) fail('accepting', e);
          return conn;
        },
      };
      try {
        this.onRequest(request);
      } catch {
        conn.close();
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    dispatcher().remove(this.id);
    S().fxh_listener_close(this.ptr);
  }
}

/** Waits for one connection on ip:port (the benchmark's and tests' server side: blocking, no dispatcher). */
export async function acceptOne(ip: string, port: number, pdata: (peer: Buffer, c: VerbsConn) => Buffer, opts: ConnOptions = {}): Promise<VerbsConn> {
  return new Promise((resolve, reject) => {
    let taken = false;
    const l = new VerbsListener(ip, port, (r) => {
      if (taken) throw new Error('one connection only');
      taken = true;
      let mine: Buffer;
      try {
        mine = pdata(r.peerData, r.conn);
      } catch (e) {
        l.close();
        r.conn.close();
        reject(e);
        return;
      }
      r.accept(mine).then(
        (c) => {
          l.close();
          resolve(c);
        },
        (e) => {
          l.close();
          r.conn.close();
          reject(e);
        },
      );
    }, opts.depth);
  });
}

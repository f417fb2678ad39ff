// RC connections, memory registrations and work requests: the JS face of the shim. Two sides swap
// their queue pair's (qpn, psn, gid) and up to 200 bytes of private data over a TCP connection to the
// RDMA address (the way perftest does; rdma_cm's handshake fails between the guest's namespaces, see
// the shim), then keep it open as the lifeline: its end means the peer is gone. A connection's close
// frees its queue pair and every memory registration made on it.
import net from 'node:net';
import os from 'node:os';
import { S, callAsync, errBuf, errText, tryShim, type Ptr } from './ffi.js';
import { dispatcher } from './dispatch.js';

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
  readonly id: number;
  readonly qpn: number;
  /** the RDMA device it lives on */
  readonly device: string;
  /** the peer's private data of the handshake */
  peerData: Buffer = Buffer.alloc(0);
  private closed = false;
  private readonly mrs = new Map<number, Mr>();
  private readonly pollBuf = new BigUint64Array(32 * 4);
  private watched = false;
  private goneCbs: ((why: string) => void)[] = [];
  /** why the peer is gone, once its lifeline ended */
  gone: string | null = null;
  /** the handshake's TCP connection, kept as the lifeline */
  socket: net.Socket | null = null;

  constructor(
    private readonly ptr: Ptr,
    id: number,
  ) {
    this.id = id;
    this.qpn = S().fxh_qpn(ptr);
    this.device = S().fxh_dev_name(ptr);
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
    const mr = { slot, lkey: keys[0]!, rkey: keys[1]!, addr: BigInt(S().fxh_mr_addr(this.ptr, slot)), bytes };
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
    if (r !== 0) throw new RdmaError(`${errText(err)}${this.gone ? ` (${this.gone})` : ''}`);
  }

  /** Event-driven completions: `onCq` whenever the completion channel fires (then poll). */
  watch(onCq: () => void): void {
    const err = errBuf();
    if (S().fxh_watch(this.handle, err, err.length)) fail('watching the connection', err);
    this.watched = true;
    dispatcher().add(this.id, {
      onCq: () => {
        if (this.closed) return;
        S().fxh_rearm(this.ptr);
        onCq();
      },
    });
  }

  /** once, when the peer's lifeline ends (it closed, or its process died) */
  onPeerGone(cb: (why: string) => void): void {
    this.goneCbs.push(cb);
  }

  /** @internal the handshake hands over its socket */
  adopt(socket: net.Socket): void {
    this.socket = socket;
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.closed) return;
      this.gone = `the peer's connection to QP 0x${this.qpn.toString(16)} closed (its process ended or closed the link)`;
      // a vanished peer's QP does not answer; rxe's retries may never give up: flush what is outstanding
      S().fxh_qp_error(this.ptr);
      for (const cb of this.goneCbs.splice(0)) cb(this.gone);
    });
  }

  /** Destroys the QP and frees every memory registration; ends the lifeline. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.watched) dispatcher().remove(this.id);
    this.mrs.clear();
    this.socket?.destroy();
    S().fxh_conn_close(this.ptr);
  }
}

const INFO = 24; // qpn, psn, gid
const MAX_PDATA = 200;

function hello(conn: Ptr, pdata: Buffer): Buffer {
  if (pdata.length > MAX_PDATA) throw new RdmaError(`private data of ${pdata.length} bytes: at most ${MAX_PDATA}`);
  const b = Buffer.alloc(INFO + 1 + pdata.length);
  S().fxh_local_info(conn, b);
  b.writeUInt8(pdata.length, INFO);
  pdata.copy(b, INFO + 1);
  return b;
}

/** Reads exactly n bytes from the handshake socket (then it stays paused). */
function readExactly(s: net.Socket, n: number, what: string, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let have = Buffer.alloc(0);
    const timer = setTimeout(() => done(new RdmaError(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs);
    const done = (e: Error | null, b?: Buffer) => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('close', onClose);
      s.off('error', onError);
      s.pause();
      if (e) reject(e);
      else resolve(b!);
    };
    const onData = (d: Buffer) => {
      have = Buffer.concat([have, d]);
      if (have.length >= n) {
        done(null, have.subarray(0, n)); // pauses first: an unshift while flowing comes straight back here
        if (have.length > n) s.unshift(have.subarray(n));
      }
    };
    const onClose = () => done(new RdmaError(`${what}: the peer closed the connection`));
    const onError = (e: Error) => done(new RdmaError(`${what}: ${e.message}`));
    s.on('data', onData);
    s.on('close', onClose);
    s.on('error', onError);
    s.resume();
  });
}

async function readHello(s: net.Socket, what: string, timeoutMs: number): Promise<{ info: Buffer; pdata: Buffer }> {
  const head = await readExactly(s, INFO + 1, what, timeoutMs);
  const n = head.readUInt8(INFO);
  return { info: head.subarray(0, INFO), pdata: n ? await readExactly(s, n, what, timeoutMs) : Buffer.alloc(0) };
}

/** Both QPs to RTS, then one byte each way, so that neither side sends before the other can receive. */
async function finish(conn: VerbsConn, s: net.Socket, peerInfo: Buffer, what: string, timeoutMs: number): Promise<void> {
  const err = errBuf();
  if (S().fxh_ready(conn.handle, peerInfo, err, err.length)) fail(what, err);
  s.write('R');
  const r = await readExactly(s, 1, what, timeoutMs);
  if (r[0] !== 0x52) throw new RdmaError(`${what}: the peer's handshake sent ${r[0]}, not "R"`);
  conn.adopt(s);
}

function openConn(ip: string, depth: number): VerbsConn {
  const err = errBuf();
  const id = nextId++;
  const p = S().fxh_open(id, ip, depth, err, err.length);
  if (!p) fail(`opening a queue pair on the RDMA device of ${ip}`, err);
  return new VerbsConn(p, id);
}

function tcpConnect(ip: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: ip, port, noDelay: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new RdmaError(`connecting to rdma:${ip}:${port}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(new RdmaError(`connecting to rdma:${ip}:${port}: ${e.message}`));
    });
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
  });
}

/**
 * Connects to a VerbsListener at ip:port. `setup` runs once the queue pair exists and before the peer
 * can reach it (register memory, post receives) and returns this side's private data (≤ 200 bytes).
 */
export async function connectVerbs(ip: string, port: number, setup: (c: VerbsConn) => Buffer, opts: ConnOptions = {}): Promise<VerbsConn> {
  if (!('devices' in rdmaDevices())) throw new RdmaError(`connecting to rdma:${ip}:${port}: ${(rdmaDevices() as { error: string }).error}`);
  const timeoutMs = opts.timeoutMs ?? 5000;
  const s = await tcpConnect(ip, port, timeoutMs);
  let conn: VerbsConn | undefined;
  try {
    conn = openConn(s.localAddress!.replace(/^::ffff:/, ''), opts.depth ?? 64);
    s.write(hello(conn.handle, setup(conn)));
    const peer = await readHello(s, `connecting to rdma:${ip}:${port}`, timeoutMs);
    conn.peerData = peer.pdata;
    await finish(conn, s, peer.info, `connecting to rdma:${ip}:${port}`, timeoutMs);
    return conn;
  } catch (e) {
    conn?.close();
    s.destroy();
    throw e;
  }
}

export interface Request {
  /** the connecting side's private data */
  peerData: Buffer;
  conn: VerbsConn;
  /** accepts with this side's private data; resolves once both queue pairs are ready */
  accept(pdata: Buffer): Promise<VerbsConn>;
}

/** Listens on ip:port (the address of an RDMA device) for connectVerbs; `onRequest` decides (it throws to refuse). */
export class VerbsListener {
  private readonly server: net.Server;
  port = 0;

  private constructor(
    readonly ip: string,
    private readonly onRequest: (r: Request) => void,
    private readonly opts: ConnOptions,
  ) {
    this.server = net.createServer({ noDelay: true }, (s) => void this.serve(s));
  }

  static async listen(ip: string, port: number, onRequest: (r: Request) => void, opts: ConnOptions = {}): Promise<VerbsListener> {
    const d = rdmaDevices();
    if ('error' in d) throw new RdmaError(`listening on rdma:${ip}:${port}: ${d.error}`);
    const l = new VerbsListener(ip, onRequest, opts);
    // the address must belong to an RDMA device: find out now, not at the first connection
    openConn(ip, 1).close();
    await new Promise<void>((resolve, reject) => {
      l.server.once('error', (e) => reject(new RdmaError(`listening on rdma:${ip}:${port}: ${e.message}`)));
      l.server.listen({ host: ip, port }, () => resolve());
    });
    l.port = (l.server.address() as net.AddressInfo).port;
    return l;
  }

  private async serve(s: net.Socket): Promise<void> {
    const timeoutMs = this.opts.timeoutMs ?? 5000;
    const what = `accepting on rdma:${this.ip}:${this.port}`;
    let conn: VerbsConn | undefined;
    try {
      const peer = await readHello(s, what, timeoutMs);
      conn = openConn(this.ip, this.opts.depth ?? 64);
      conn.peerData = peer.pdata;
      const c = conn;
      let accepted = false;
      this.onRequest({
        peerData: peer.pdata,
        conn: c,
        accept: async (pdata) => {
          accepted = true;
          try {
            s.write(hello(c.handle, pdata));
            await finish(c, s, peer.info, what, timeoutMs);
            return c;
          } catch (e) {
            c.close();
            s.destroy();
            throw e;
          }
        },
      });
      if (!accepted) throw new RdmaError('refused');
    } catch {
      conn?.close();
      s.destroy();
    }
  }

  /** Stops accepting; resolves once the connections it accepted have ended too (as net.Server's close). */
  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** Waits for one connection on ip:port (the benchmark's and tests' server side). */
export async function acceptOne(ip: string, port: number, pdata: (peer: Buffer, c: VerbsConn) => Buffer, opts: ConnOptions = {}): Promise<VerbsConn> {
  let settle!: { resolve: (c: VerbsConn) => void; reject: (e: unknown) => void };
  const got = new Promise<VerbsConn>((resolve, reject) => (settle = { resolve, reject }));
  let taken = false;
  const l = await VerbsListener.listen(ip, port, (r) => {
    if (taken) throw new RdmaError('one connection only');
    taken = true;
    r.accept(pdata(r.peerData, r.conn)).then(settle.resolve, settle.reject);
  }, opts);
  const timer = setTimeout(() => settle.reject(new RdmaError(`no connection to rdma:${ip}:${l.port} within ${opts.timeoutMs ?? 60000} ms`)), opts.timeoutMs ?? 60000);
  try {
    return await got;
  } finally {
    clearTimeout(timer);
    void l.close(); // not awaited: the accepted connection's lifeline keeps it open
  }
}

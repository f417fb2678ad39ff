// The "rdma:" LinkTransport (importing this module registers it). Frames travel as SENDs into the
// peer's pre-posted receive buffers: a frame's bytes are cut into chunks of one buffer (64 KiB less a
// byte) and joined again by the receiver's FrameReader (RC delivers them in order). readRegion is a
// one-sided RDMA READ of the peer's registered memory: the owner's CPU answers one lookup per region
// (address, rkey, length, registering it), never a read. Unregistering a region revokes it: the reader
// drops it and acknowledges once its reads of it are done, and only then is the memory deregistered.
// A failed work request ends the link with an error naming the QP and the request; closing frees
// every memory registration.
import { FrameReader } from '../platform/frame-stream.js';
import { registerLinkTransport, MAX_REGION_READ, RegionTable, type Link, type LinkOptions, type LinkTransport } from '../platform/link.js';
import { decodeFrame, type Frame, type FrameBytes, type ProtocolError } from '../platform/protocol.js';
import type { Listener } from '../platform/transport.js';
import { RdmaError, VerbsListener, connectVerbs, type Completion, type Mr, type VerbsConn } from './verbs.js';

const SLOT = 64 * 1024;
const RECVS = 32;
// What is in flight is kept under ~1000 packets (MTU 1024): a burst beyond the kernel's backlog
// (netdev_max_backlog, 1000) is dropped on a veth, and rxe (6.1) then failed a multi-packet SEND's
// retry with "remote operation error" (seen in the guest with 32 SENDs of 64 KiB in flight).
const SENDS = 6;
const READS_IN_FLIGHT = 2;
const READ_PIECE = 256 << 10;
const DEPTH = 64; // SENDS + reads in flight and RECVS must fit
const HIGH_WATER = 8 << 20;
const VERSION = 1;

const M_STREAM = 1;
const M_LOOKUP = 2;
const M_ANSWER = 3;
const M_REVOKE = 4;
const M_REVOKE_ACK = 5;

const W_SEND = 1n;
const W_RECV = 2n;
const W_READ = 3n;
const wr = (kind: bigint, i: number) => (kind << 32n) | BigInt(i);

interface RemoteRegion {
  token: number;
  addr: bigint;
  rkey: number;
  length: number;
}

interface PendingRead {
  what: string;
  id: string;
  token: number;
  dest: Buffer;
  mr: Mr | null;
  left: number;
  /** where the read starts in the peer's memory */
  raddr: bigint;
  rkey: number;
  resolve: (b: Uint8Array) => void;
  reject: (e: Error) => void;
}

interface Exposed {
  id: string;
  bytes: Uint8Array;
  mr: Mr | null;
  token: number;
}

class RdmaLink implements Link {
  private readonly sendMr: Mr;
  private readonly recvMr: Mr;
  private readonly sendBuf = Buffer.alloc(SENDS * SLOT);
  private readonly recvBuf = Buffer.alloc(RECVS * SLOT);
  private readonly freeSends: number[] = [];
  private readonly queue: { kind: number; data: Uint8Array }[] = [];
  private queued = 0;
  private readonly reader = new FrameReader();
  private onFramesCb: ((frames: (Frame | ProtocolError)[]) => void) | null = null;
  private readonly closeCbs: ((why: Error | null) => void)[] = [];
  private closed: Error | null | undefined;
  // reader side
  private readonly lookups = new Map<string, Promise<RemoteRegion>>();
  private readonly lookupWaits = new Map<number, { resolve: (r: RemoteRegion) => void; reject: (e: Error) => void }>();
  private nextLookup = 1;
  private readonly reads = new Map<number, PendingRead>();
  private readonly readQueue: { read: number; piece: number }[] = [];
  private readsInFlight = 0;
  private nextRead = 1;
  private readonly revokedWaiting = new Map<number, string>(); // token -> id, acked when its reads end
  // owner side
  private readonly exposed = new Map<number, Exposed>();
  private nextToken = 1;
  private readonly stopWatching: () => void;

  constructor(
    private readonly conn: VerbsConn,
    public peer: string,
    private readonly regions: RegionTable,
  ) {
    this.sendMr = conn.reg(this.sendBuf);
    this.recvMr = conn.reg(this.recvBuf);
    for (let i = 0; i < SENDS; i++) this.freeSends.push(i);
    for (let i = 0; i < RECVS; i++) conn.postRecv(wr(W_RECV, i), this.recvMr, i * SLOT, SLOT);
    this.stopWatching = regions.onUnregister((id) => this.revoke(id));
  }

  /** once both queue pairs are ready */
  start(): void {
    this.conn.watch(() => this.onCq());
    this.conn.onPeerGone((why) => this.end(null, why));
    // what arrived before the watch raises no event; polled once the caller had its turn to call onFrames
    setImmediate(() => this.onCq());
  }

  // ---- sending ----

  /** stream bytes are cut into buffer-sized chunks; a control message is always one (they are short) */
  private enqueue(kind: number, data: Uint8Array): void {
    if (kind !== M_STREAM) {
      this.queue.push({ kind, data: data.subarray(0, SLOT - 1) });
      return;
    }
    for (let off = 0; off < data.length; off += SLOT - 1) {
      const chunk = data.subarray(off, Math.min(data.length, off + SLOT - 1));
      this.queue.push({ kind, data: chunk });
      this.queued += chunk.length;
    }
  }

  private pump(): void {
    while (this.closed === undefined && this.freeSends.length && this.queue.length) {
      const m = this.queue.shift()!;
      const slot = this.freeSends.pop()!;
      const o = slot * SLOT;
      this.sendBuf[o] = m.kind;
      this.sendBuf.set(m.data, o + 1);
      this.queued -= m.data.length;
      try {
        this.conn.post('send', wr(W_SEND, slot), this.sendMr, o, 1 + m.data.length);
      } catch (e) {
        this.end(e as Error);
      }
    }
  }

  private control(kind: number, body: Buffer): void {
    this.enqueue(kind, body);
    this.pump();
  }

  send(frame: Buffer | FrameBytes): boolean {
    if (this.closed !== undefined) return false;
    for (const part of Buffer.isBuffer(frame) ? [frame] : frame) this.enqueue(M_STREAM, part);
    this.pump();
    return this.queued < HIGH_WATER;
  }

  // ---- completions ----

  private onCq(): void {
    for (;;) {
      if (this.closed !== undefined) return;
      const got = this.conn.poll();
      if (!got.length) return;
      const app: (Frame | ProtocolError)[] = [];
      for (const c of got) {
        if (this.closed !== undefined) return;
        if (c.status !== 0) {
          this.end(new RdmaError(this.conn.describe(c, this.opName(c))));
          return;
        }
        const kind = c.wrId >> 32n;
        const i = Number(c.wrId & 0xffffffffn);
        if (kind === W_SEND) {
          this.freeSends.push(i);
        } else if (kind === W_RECV) {
          this.onMessage(i, c.byteLen, app);
          if (this.closed === undefined) this.conn.postRecv(wr(W_RECV, i), this.recvMr, i * SLOT, SLOT);
        } else if (kind === W_READ) this.readPieceDone(i);
      }
      this.pump();
      this.pumpReads();
      if (app.length && this.onFramesCb) this.onFramesCb(app);
    }
  }

  private opName(c: Completion): string {
    const kind = c.wrId >> 32n;
    if (kind === W_SEND) return 'SEND';
    if (kind === W_RECV) return 'RECV';
    const r = this.reads.get(Number(c.wrId & 0xffffffffn));
    return `RDMA_READ${r ? ` (${r.what})` : ''}`;
  }

  private onMessage(slot: number, len: number, app: (Frame | ProtocolError)[]): void {
    const o = slot * SLOT;
    const kind = this.recvBuf[o];
    const body = Buffer.from(this.recvBuf.subarray(o + 1, o + len)); // the slot is reused at once
    if (kind === M_STREAM) {
      let bodies: Buffer[];
      try {
        bodies = this.reader.push(body);
      } catch (e) {
        this.end(e as Error); // a corrupt length: the stream cannot be resynchronised
        return;
      }
      for (const b of bodies) {
        try {
          app.push(decodeFrame(b));
        } catch (e) {
          app.push(e as ProtocolError);
        }
      }
    } else if (kind === M_LOOKUP) this.answerLookup(body.readUInt32LE(0), body.toString('utf8', 4));
    else if (kind === M_ANSWER) this.onAnswer(body);
    else if (kind === M_REVOKE) this.onRevoke(body.readUInt32LE(0), body.toString('utf8', 4));
    else if (kind === M_REVOKE_ACK) this.onRevokeAck(body.readUInt32LE(0));
    else this.end(new RdmaError(`${this.peer} sent a message of unknown kind ${kind}`));
  }

  // ---- the owner's side of region reads ----

  private answerLookup(req: number, id: string): void {
    const bytes = this.regions.get(id);
    if (!bytes) {
      const why = this.regions.slice(id, 0, 0) as string;
      const b = Buffer.alloc(5 + Buffer.byteLength(why));
      b.writeUInt32LE(req, 0);
      b.writeUInt8(0, 4);
      b.write(why, 5);
      return this.control(M_ANSWER, b);
    }
    let e = [...this.exposed.values()].find((x) => x.id === id && x.bytes === bytes);
    if (!e) {
      try {
        e = { id, bytes, mr: bytes.length ? this.conn.reg(bytes, { read: true }) : null, token: this.nextToken++ };
      } catch (err) {
        return this.end(err as Error);
      }
      this.exposed.set(e.token, e);
    }
    const b = Buffer.alloc(4 + 1 + 4 + 8 + 4 + 8);
    b.writeUInt32LE(req, 0);
    b.writeUInt8(1, 4);
    b.writeUInt32LE(e.token, 5);
    b.writeBigUInt64LE(e.mr?.addr ?? 0n, 9);
    b.writeUInt32LE(e.mr?.rkey ?? 0, 17);
    b.writeBigUInt64LE(BigInt(bytes.length), 21);
    this.control(M_ANSWER, b);
  }

  private revoke(id: string): void {
    if (this.closed !== undefined) return;
    for (const e of this.exposed.values()) {
      if (e.id !== id || e.token < 0) continue;
      const b = Buffer.alloc(4 + Buffer.byteLength(id));
      b.writeUInt32LE(e.token, 0);
      b.write(id, 4);
      this.control(M_REVOKE, b);
    }
  }

  private onRevokeAck(token: number): void {
    const e = this.exposed.get(token);
    if (!e) return;
    this.exposed.delete(token);
    if (e.mr) this.conn.dereg(e.mr);
  }

  // ---- the reader's side ----

  private onAnswer(b: Buffer): void {
    const w = this.lookupWaits.get(b.readUInt32LE(0));
    if (!w) return;
    this.lookupWaits.delete(b.readUInt32LE(0));
    if (b.readUInt8(4) === 1) w.resolve({ token: b.readUInt32LE(5), addr: b.readBigUInt64LE(9), rkey: b.readUInt32LE(17), length: Number(b.readBigUInt64LE(21)) });
    else w.reject(new RdmaError(b.toString('utf8', 5)));
  }

  private onRevoke(token: number, id: string): void {
    this.lookups.delete(id); // at worst a newer lookup of the same id is asked again
    this.revokedWaiting.set(token, id);
    this.ackRevokes();
  }

  private ackRevokes(): void {
    for (const [token] of this.revokedWaiting) {
      if ([...this.reads.values()].some((r) => r.token === token)) continue;
      this.revokedWaiting.delete(token);
      const b = Buffer.alloc(4);
      b.writeUInt32LE(token, 0);
      this.control(M_REVOKE_ACK, b);
    }
  }

  private lookup(id: string): Promise<RemoteRegion> {
    let p = this.lookups.get(id);
    if (!p) {
      const req = this.nextLookup++;
      p = new Promise<RemoteRegion>((resolve, reject) => this.lookupWaits.set(req, { resolve, reject }));
      this.lookups.set(id, p);
      p.catch(() => this.lookups.get(id) === p && this.lookups.delete(id)); // a refusal is asked again next time
      const b = Buffer.alloc(4 + Buffer.byteLength(id));
      b.writeUInt32LE(req, 0);
      b.write(id, 4);
      this.control(M_LOOKUP, b);
    }
    return p;
  }

  async readRegion(id: string, offset: number, length: number): Promise<Uint8Array> {
    const what = `a read of [${offset}, ${offset + length}) of region "${id}"`;
    if (this.closed !== undefined) throw new Error(`the link to ${this.peer} is closed: cannot do ${what}`);
    if (length > MAX_REGION_READ) throw new Error(`${what}: at most ${MAX_REGION_READ} bytes per read; split it`);
    let r: RemoteRegion;
    try {
      r = await this.lookup(id);
    } catch (e) {
      throw new Error(this.closed !== undefined ? (e as Error).message : `${this.peer} refused ${what}: ${(e as Error).message}`);
    }
    if (offset + length > r.length) throw new Error(`${this.peer} refused ${what}: read of [${offset}, ${offset + length}) is outside region "${id}" of ${r.length} bytes`);
    if (length === 0) return new Uint8Array(0);
    if (this.closed !== undefined) throw new Error(`the link to ${this.peer} is closed: cannot do ${what}`);
    const dest = Buffer.allocUnsafeSlow(length);
    const mr = this.conn.reg(dest);
    const read = this.nextRead++;
    const pieces = Math.ceil(length / READ_PIECE);
    return new Promise<Uint8Array>((resolve, reject) => {
      this.reads.set(read, { what, id, token: r.token, dest, mr, left: pieces, raddr: r.addr + BigInt(offset), rkey: r.rkey, resolve, reject });
      for (let p = 0; p < pieces; p++) this.readQueue.push({ read, piece: p });
      this.pumpReads();
    });
  }

  private pumpReads(): void {
    while (this.closed === undefined && this.readsInFlight < READS_IN_FLIGHT && this.readQueue.length) {
      const q = this.readQueue.shift()!;
      const pr = this.reads.get(q.read);
      if (!pr) continue;
      const off = q.piece * READ_PIECE;
      const n = Math.min(READ_PIECE, pr.dest.length - off);
      try {
        this.conn.post('read', wr(W_READ, q.read), pr.mr!, off, n, pr.raddr + BigInt(off), pr.rkey);
        this.readsInFlight++;
      } catch (e) {
        return this.end(e as Error);
      }
    }
  }

  private readPieceDone(read: number): void {
    this.readsInFlight--;
    const r = this.reads.get(read);
    if (!r || --r.left > 0) return;
    this.reads.delete(read);
    if (r.mr) this.conn.dereg(r.mr);
    r.resolve(r.dest);
    if (this.revokedWaiting.size) this.ackRevokes();
  }

  // ---- the end ----

  private end(why: Error | null, goneWhy?: string): void {
    if (this.closed !== undefined) return;
    this.closed = why;
    this.stopWatching();
    const reason = why ? `: ${why.message}` : goneWhy ? `: ${goneWhy}` : '';
    for (const r of this.reads.values()) r.reject(new Error(`the link to ${this.peer} ended during ${r.what}${reason}`));
    this.reads.clear();
    for (const w of this.lookupWaits.values()) w.reject(new Error(`the link to ${this.peer} ended while asking for a region${reason}`));
    this.lookupWaits.clear();
    this.conn.close(); // the QP and every registration (send/receive buffers, exposed regions, read targets)
    for (const cb of this.closeCbs) cb(why);
  }

  onFrames(cb: (frames: (Frame | ProtocolError)[]) => void): void {
    this.onFramesCb = cb;
  }

  onClose(cb: (why: Error | null) => void): void {
    if (this.closed !== undefined) cb(this.closed);
    else this.closeCbs.push(cb);
  }

  close(): void {
    this.end(null);
  }

  /** memory registrations alive (for tests: 0 after the end) */
  registrations(): number {
    return this.conn.mrCount();
  }

  get qpn(): number {
    return this.conn.qpn;
  }
}

function splitAddress(address: string): { ip: string; port: number } {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad rdma address "${address}": want <IPv4 of an RDMA device>:port`);
  return { ip: address.slice(0, i), port };
}

function hello(): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(VERSION, 0);
  b.writeUInt32LE(SLOT, 1);
  return b;
}

function checkHello(b: Buffer, peer: string): void {
  if (b.length < 5 || b.readUInt8(0) !== VERSION || b.readUInt32LE(1) !== SLOT) {
    throw new RdmaError(`${peer} speaks another rdma link (version ${b[0]}, buffers of ${b.length >= 5 ? b.readUInt32LE(1) : '?'} bytes; this side: version ${VERSION}, ${SLOT})`);
  }
}

const NO_REGIONS = new RegionTable();

export const rdmaLinkTransport: LinkTransport = {
  scheme: 'rdma',
  async listen(address, onLink, opts: LinkOptions = {}): Promise<Listener> {
    const { ip, port } = splitAddress(address);
    const l = await VerbsListener.listen(
      ip,
      port,
      (req) => {
        const peer = `rdma:${req.conn.socket?.remoteAddress ?? 'peer'}`;
        checkHello(req.peerData, peer);
        const link = new RdmaLink(req.conn, peer, opts.regions ?? NO_REGIONS);
        req.accept(hello()).then(
          () => {
            link.peer = `rdma:${req.conn.socket?.remoteAddress}:${req.conn.socket?.remotePort}`;
            onLink(link);
            link.start();
          },
          () => link.close(),
        );
      },
      { depth: DEPTH },
    );
    return { endpoint: `rdma:${ip}:${l.port}`, close: () => l.close() };
  },
  async connect(address, opts: LinkOptions = {}): Promise<Link> {
    const { ip, port } = splitAddress(address);
    let link: RdmaLink | undefined;
    const conn = await connectVerbs(ip, port, (c) => {
      link = new RdmaLink(c, `rdma:${address}`, opts.regions ?? NO_REGIONS);
      return hello();
    }, { depth: DEPTH });
    try {
      checkHello(conn.peerData, `rdma:${address}`);
    } catch (e) {
      link!.close();
      throw e;
    }
    link!.start();
    return link!;
  },
};

registerLinkTransport(rdmaLinkTransport);

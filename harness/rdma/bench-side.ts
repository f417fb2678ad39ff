// One side of the verbs micro-benchmarks: `node bench-side.js server|client <ip> <port> <plan-json>`.
// Each case gets a fresh RC connection (fresh, zeroed buffers, nothing left posted from the last
// case); the loops run in C (fxh_bench), except poll=js, where JS posts each READ and polls for its
// completion itself, to measure what a JS round trip per completion costs. The client prints one JSON
// line per case with its samples (ns).
import { S, callAsync, errBuf, errText } from './ffi.js';
import { OP, RdmaError, WC, acceptOne, connectVerbs, type Mr, type VerbsConn } from './verbs.js';

export type BenchKind = 'write_lat' | 'read_lat' | 'send_lat' | 'write_bw';
export const KINDS: Record<BenchKind, number> = { write_lat: 0, read_lat: 1, send_lat: 2, write_bw: 3 };
/** how completions are waited for: busy polling in C, the completion channel in C, or busy polling from JS */
export type PollMode = 'busy' | 'event' | 'js';

export interface BenchCase {
  kind: BenchKind;
  size: number;
  poll: PollMode;
  iters: number;
  warmup: number;
  /** write_bw: WRITEs in flight */
  depth?: number;
}

export interface CaseResult {
  case: BenchCase;
  /** per iteration: half the round trip (write_lat, send_lat), the READ (read_lat), the gap between completions (write_bw) */
  samplesNs: number[];
  /** write_bw: bytes moved / time */
  bytesPerSec?: number;
  error?: string;
}

const PDATA = 24; // u64 addr, u32 rkey, u32 size, u32 case, u32 pid

function pdata(mr: Mr, size: number, index: number): Buffer {
  const b = Buffer.alloc(PDATA);
  b.writeBigUInt64LE(mr.addr, 0);
  b.writeUInt32LE(mr.rkey, 8);
  b.writeUInt32LE(size, 12);
  b.writeUInt32LE(index, 16);
  b.writeUInt32LE(process.pid, 20);
  return b;
}

function peerOf(b: Buffer): { addr: bigint; rkey: number; size: number; index: number; pid: number } {
  if (b.length < PDATA) throw new RdmaError(`the peer's private data has ${b.length} bytes, want ${PDATA}`);
  return { addr: b.readBigUInt64LE(0), rkey: b.readUInt32LE(8), size: b.readUInt32LE(12), index: b.readUInt32LE(16), pid: b.readUInt32LE(20) };
}

const bufFor = (size: number) => Buffer.alloc(2 * size + 64);

async function bench(conn: VerbsConn, c: BenchCase, server: boolean, mr: Mr, raddr: bigint, rkey: number, timeoutMs: number): Promise<bigint[]> {
  const samples = new BigUint64Array(server ? 1 : c.iters);
  const err = errBuf();
  const r = await callAsync(S().fxh_bench, conn.handle, KINDS[c.kind], server ? 1 : 0, mr.slot, c.size, raddr, rkey, c.warmup, c.iters, c.depth ?? 32, c.poll === 'event' ? 1 : 0, samples, timeoutMs, err, err.length);
  if (r !== 0) throw new RdmaError(`${c.kind} ${c.size} B (${c.poll}): ${errText(err)}`);
  return [...samples];
}

/** READ latency with a JS post and a JS busy poll per iteration. */
function jsReadLoop(conn: VerbsConn, c: BenchCase, mr: Mr, raddr: bigint, rkey: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < c.warmup + c.iters; i++) {
    const t0 = process.hrtime.bigint();
    conn.post('read', BigInt(OP.read), mr, c.size, c.size, raddr, rkey);
    for (;;) {
      const got = conn.poll();
      if (!got.length) continue;
      if (got[0]!.status !== 0) throw new RdmaError(conn.describe(got[0]!, 'RDMA_READ'));
      if (got[0]!.opcode === WC.read) break;
    }
    if (i >= c.warmup) out.push(Number(process.hrtime.bigint() - t0));
  }
  return out;
}

export async function runServer(ip: string, port: number, plan: BenchCase[], timeoutMs: number): Promise<void> {
  for (let i = 0; i < plan.length; i++) {
    const c = plan[i]!;
    const buf = bufFor(c.size);
    let mr: Mr | undefined;
    const conn = await acceptOne(ip, port, (peer, conn) => {
      const p = peerOf(peer);
      if (p.index !== i || p.size !== c.size) throw new RdmaError(`the client runs case ${p.index} (${p.size} B), this server case ${i} (${c.size} B)`);
      mr = conn.reg(buf, { read: true, write: true });
      return pdata(mr, c.size, i);
    }, { timeoutMs });
    try {
      const p = peerOf(conn.peerData);
      // poll=js: the client drives READs; this side only waits for its "done", as for read_lat
      await bench(conn, c.poll === 'js' ? { ...c, kind: 'read_lat', poll: 'busy' } : c, true, mr!, p.addr, p.rkey, timeoutMs);
    } finally {
      conn.close();
    }
  }
}

export async function runClient(ip: string, port: number, plan: BenchCase[], timeoutMs: number, onResult: (r: CaseResult) => void): Promise<void> {
  for (let i = 0; i < plan.length; i++) {
    const c = plan[i]!;
    const buf = bufFor(c.size);
    let mr: Mr | undefined;
    let conn: VerbsConn | undefined;
    // the server may still be closing the last case's connection and listening anew: retry a refused connect briefly
    for (let attempt = 0; ; attempt++) {
      try {
        conn = await connectVerbs(ip, port, (cn) => {
          mr = cn.reg(buf, { read: true, write: true });
          return pdata(mr, c.size, i);
        }, { timeoutMs });
        break;
      } catch (e) {
        if (attempt >= 50 || !/ECONNREFUSED/.test(String(e))) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    try {
      const p = peerOf(conn.peerData);
      let samplesNs: number[];
      if (c.poll === 'js') {
        if (c.kind !== 'read_lat') throw new RdmaError('poll=js is measured for read_lat only');
        samplesNs = jsReadLoop(conn, c, mr!, p.addr, p.rkey);
        const done = Buffer.from('done');
        done.copy(buf, 2 * c.size);
        await conn.op('send', mr!, 2 * c.size, 4);
      } else samplesNs = (await bench(conn, c, false, mr!, p.addr, p.rkey, timeoutMs)).map(Number);
      const r: CaseResult = { case: c, samplesNs };
      if (c.kind === 'write_bw') r.bytesPerSec = (c.size * samplesNs.length) / (samplesNs.reduce((a, b) => a + b, 0) / 1e9);
      onResult(r);
    } finally {
      conn.close();
    }
  }
}

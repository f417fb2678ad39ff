// Shared by the guest-side verbs test scripts.
import type { Mr } from '../../harness/rdma/verbs.js';

export function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

/** the bytes of a test region: a pattern no two nearby offsets share */
export function regionBytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 9)) & 0xff;
  return b;
}

export function verbsPdata(mr: Mr): Buffer {
  const b = Buffer.alloc(20);
  b.writeBigUInt64LE(mr.addr, 0);
  b.writeUInt32LE(mr.rkey, 8);
  b.writeUInt32LE(mr.bytes.length, 12);
  b.writeUInt32LE(process.pid, 16);
  return b;
}

export function parsePdata(b: Buffer): { addr: bigint; rkey: number; length: number; pid: number } {
  return { addr: b.readBigUInt64LE(0), rkey: b.readUInt32LE(8), length: b.readUInt32LE(12), pid: b.readUInt32LE(16) };
}

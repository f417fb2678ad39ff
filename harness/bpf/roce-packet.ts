// Builds RoCEv2 packets byte by byte (IBTA spec, annex A17): for BPF_PROG_RUN tests of the
// telemetry and loss programs, and as UDP payloads sent through a real veth. Written from the
// spec, apart from bpf/roce.h, so it can serve as the tests' oracle.
import { addrBytes } from './roce-layout.js';

/** opcodes by name; UC and UD ones are 0x20 and 0x60 above their RC counterparts */
export const OP = Object.freeze({
  SEND_FIRST: 0x00,
  SEND_MIDDLE: 0x01,
  SEND_LAST: 0x02,
  SEND_LAST_IMM: 0x03,
  SEND_ONLY: 0x04,
  SEND_ONLY_IMM: 0x05,
  WRITE_FIRST: 0x06,
  WRITE_MIDDLE: 0x07,
  WRITE_LAST: 0x08,
  WRITE_LAST_IMM: 0x09,
  WRITE_ONLY: 0x0a,
  WRITE_ONLY_IMM: 0x0b,
  READ_REQUEST: 0x0c,
  READ_RESPONSE_FIRST: 0x0d,
  READ_RESPONSE_MIDDLE: 0x0e,
  READ_RESPONSE_LAST: 0x0f,
  READ_RESPONSE_ONLY: 0x10,
  ACK: 0x11,
  ATOMIC_ACK: 0x12,
  COMPARE_SWAP: 0x13,
  FETCH_ADD: 0x14,
  SEND_LAST_INV: 0x16,
  SEND_ONLY_INV: 0x17,
  UC_SEND_ONLY: 0x24,
  UC_WRITE_ONLY: 0x2a,
  UD_SEND_ONLY: 0x64,
  UD_SEND_ONLY_IMM: 0x65,
  CNP: 0x81,
});

const RETH = 16, IMM = 4, AETH = 4, ATOMIC_ETH = 28, ATOMIC_ACK_ETH = 8, IETH = 4, DETH = 8, CNP_RSVD = 16;

/** the extension headers an opcode carries, in order (name, length) */
export function extHeaders(opcode: number): [string, number][] {
  if (opcode === OP.CNP) return [['cnp', CNP_RSVD]];
  const tr = opcode >> 5, lo = opcode & 0x1f;
  if (tr === 3 && (lo === 4 || lo === 5)) return lo === 5 ? [['deth', DETH], ['imm', IMM]] : [['deth', DETH]];
  if (tr !== 0 && !(tr === 1 && lo <= 0x0b)) throw new Error(`opcode 0x${opcode.toString(16)} is not built here`);
  const t: Record<number, [string, number][]> = {
    0x03: [['imm', IMM]], 0x05: [['imm', IMM]], 0x06: [['reth', RETH]], 0x09: [['imm', IMM]], 0x0a: [['reth', RETH]],
    0x0b: [['reth', RETH], ['imm', IMM]], 0x0c: [['reth', RETH]], 0x0d: [['aeth', AETH]], 0x0f: [['aeth', AETH]],
    0x10: [['aeth', AETH]], 0x11: [['aeth', AETH]], 0x12: [['aeth', AETH], ['atomicack', ATOMIC_ACK_ETH]],
    0x13: [['atomic', ATOMIC_ETH]], 0x14: [['atomic', ATOMIC_ETH]], 0x16: [['ieth', IETH]], 0x17: [['ieth', IETH]],
  };
  if (lo === 0x15 || lo > 0x17) throw new Error(`opcode 0x${opcode.toString(16)} is reserved`);
  return t[lo] ?? [];
}

export interface RoceSpec {
  opcode: number;
  dqpn: number;
  psn: number;
  ackReq?: boolean;
  /** payload bytes (a pattern is written) */
  payload?: number;
  /** pad count (0..3) */
  pad?: number;
  /** RETH DMA length (default: payload) */
  dmaLen?: number;
  /** AETH syndrome (default 0: ACK) */
  syndrome?: number;
  src?: string;
  dst?: string;
  srcPort?: number;
  vlan?: number;
  /** added to the UDP length field (a lying header) */
  udpLenDelta?: number;
  /** IPv4 only: mark the packet as a first fragment (MF) */
  fragment?: boolean;
}

/** BTH + extension headers + payload + pad + ICRC: what a UDP socket sends to port 4791. */
export function roceUdpPayload(s: RoceSpec): Buffer {
  const pad = s.pad ?? 0;
  if (pad < 0 || pad > 3) throw new Error('pad must be 0..3');
  const payload = s.payload ?? 0;
  const ext = extHeaders(s.opcode);
  const extLen = ext.reduce((n, [, l]) => n + l, 0);
  const b = Buffer.alloc(12 + extLen + payload + pad + 4);
  b[0] = s.opcode;
  b[1] = (pad << 4) | 0; // SE=0 M=0 PadCnt TVer=0
  b.writeUInt16BE(0xffff, 2); // default P_Key
  b.writeUIntBE(s.dqpn & 0xffffff, 5, 3);
  b[8] = s.ackReq ? 0x80 : 0;
  b.writeUIntBE(s.psn & 0xffffff, 9, 3);
  let o = 12;
  for (const [name, len] of ext) {
    if (name === 'reth') {
      b.writeBigUInt64BE(0x7f0000001000n, o);
      b.writeUInt32BE(0x1234, o + 8);
      b.writeUInt32BE(s.dmaLen ?? payload, o + 12);
    } else if (name === 'aeth') {
      b[o] = s.syndrome ?? 0;
      b.writeUIntBE(1, o + 1, 3);
    }
    o += len;
  }
  for (let i = 0; i < payload; i++) b[o + i] = (i * 7 + 1) & 0xff;
  return b;
}

function ipv4Checksum(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < h.length; i += 2) sum += h.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

/** A whole Ethernet frame: Ethernet (optional VLAN) / IPv4 or IPv6 / UDP 4791 / RoCEv2. */
export function rocePacket(s: RoceSpec): Buffer {
  const body = roceUdpPayload(s);
  const src = s.src ?? '10.77.0.1';
  const dst = s.dst ?? '10.77.0.2';
  const v6 = src.includes(':');
  if (v6 !== dst.includes(':')) throw new Error('src and dst must both be IPv4 or both IPv6');
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(s.srcPort ?? 49152, 0);
  udp.writeUInt16BE(4791, 2);
  udp.writeUInt16BE((8 + body.length + (s.udpLenDelta ?? 0)) & 0xffff, 4);
  let ip: Buffer;
  if (v6) {
    ip = Buffer.alloc(40);
    ip[0] = 0x60;
    ip.writeUInt16BE(8 + body.length, 4);
    ip[6] = 17;
    ip[7] = 64;
    addrBytes(src).copy(ip, 8);
    addrBytes(dst).copy(ip, 24);
  } else {
    ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + 8 + body.length, 2);
    if (s.fragment) ip.writeUInt16BE(0x2000, 6);
    ip[8] = 64;
    ip[9] = 17;
    addrBytes(src).copy(ip, 12, 12, 16);
    addrBytes(dst).copy(ip, 16, 12, 16);
    ip.writeUInt16BE(ipv4Checksum(ip), 10);
  }
  const etherType = v6 ? 0x86dd : 0x0800;
  const eth = Buffer.alloc(s.vlan !== undefined ? 18 : 14);
  Buffer.from([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]).copy(eth, 0);
  if (s.vlan !== undefined) {
    eth.writeUInt16BE(0x8100, 12);
    eth.writeUInt16BE(s.vlan & 0xfff, 14);
    eth.writeUInt16BE(etherType, 16);
  } else {
    eth.writeUInt16BE(etherType, 12);
  }
  return Buffer.concat([eth, ip, udp, body]);
}

/** Byte offsets of the header boundaries of a frame built by rocePacket (no VLAN): where a cut is malformed for which reason. */
export function boundaries(s: RoceSpec): { eth: number; ip: number; udp: number; bth: number; ext: number; end: number } {
  const ipLen = (s.src ?? '10.77.0.1').includes(':') ? 40 : 20;
  const eth = s.vlan !== undefined ? 18 : 14;
  const extLen = extHeaders(s.opcode).reduce((n, [, l]) => n + l, 0);
  const ip = eth + ipLen, udp = ip + 8, bth = udp + 12, ext = bth + extLen;
  return { eth, ip, udp, bth, ext, end: ext + (s.payload ?? 0) + (s.pad ?? 0) + 4 };
}

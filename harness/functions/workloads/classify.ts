// classify: one Ethernet frame in, one classification line out. The generator builds frames of
// every class (chosen by the seed); the oracle is an independent TypeScript reading of the rules
// written in wasm-fixtures/src/classify.c and bpf/functions.bpf.c.
import type { Scale, Workload } from '../types.js';
import { Prng, ascii } from './prng.js';

/** index = class id */
export const CLASS_NAMES = ['', 'short', 'non-ipv4', 'bad-ipv4', 'fragment', 'tcp', 'icmp', 'other-l4', 'bad-udp', 'dns', 'ntp', 'quic', 'vxlan', 'udp'] as const;
export const CLASS_PASSES = [false, false, true, false, false, true, true, true, false, true, true, true, true, true] as const;

/** UDP payload bytes per scale (the frame adds 42, or 46 with a VLAN tag); both fit the eBPF limit. */
export const CLASSIFY_PAYLOAD: Record<Scale, number> = { small: 64, large: 1400 };

export type FrameKind = 'dns' | 'ntp' | 'quic' | 'vxlan' | 'udp' | 'tcp' | 'icmp' | 'gre' | 'fragment' | 'bad-udp' | 'bad-ipv4' | 'ipv6' | 'arp' | 'short';
export const FRAME_KINDS: readonly FrameKind[] = ['dns', 'ntp', 'quic', 'vxlan', 'udp', 'tcp', 'icmp', 'gre', 'fragment', 'bad-udp', 'bad-ipv4', 'ipv6', 'arp', 'short'];

export interface FrameSpec {
  kind: FrameKind;
  payload: number;
  vlan?: boolean;
  /** IPv4 options: header length in 32-bit words (5..15) */
  ihl?: number;
  src?: [number, number, number, number];
  dst?: [number, number, number, number];
  sport?: number;
}

function ipChecksum(h: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < h.length; i += 2) s += (h[i]! << 8) | h[i + 1]!;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** Builds one frame of `spec.kind`, filled from `rng`. */
export function buildFrame(spec: FrameSpec, rng: Prng): Uint8Array {
  if (spec.kind === 'short') return rng.bytes(rng.int(14));
  const vlan = spec.vlan ?? false;
  const l3 = vlan ? 18 : 14;
  const ethertype = spec.kind === 'ipv6' ? 0x86dd : spec.kind === 'arp' ? 0x0806 : 0x0800;
  const ihl = spec.ihl ?? 5;
  const proto = { tcp: 6, icmp: 1, gre: 47 }[spec.kind as string] ?? 17;
  const l4len = proto === 17 ? 8 + spec.payload : proto === 6 ? 20 + spec.payload : 8 + spec.payload;
  const tot = ihl * 4 + l4len;
  const frame = new Uint8Array(l3 + (ethertype === 0x0800 ? tot : 28 + spec.payload));
  frame.set(rng.bytes(12), 0); // MAC addresses
  const dv = new DataView(frame.buffer);
  if (vlan) {
    dv.setUint16(12, 0x8100);
    dv.setUint16(14, rng.int(4096));
  }
  dv.setUint16(l3 - 2, ethertype);
  if (ethertype !== 0x0800) {
    frame.set(rng.bytes(frame.length - l3), l3);
    return frame;
  }
  const src = spec.src ?? [10, rng.int(256), rng.int(256), 1 + rng.int(254)];
  const dst = spec.dst ?? [192, 168, rng.int(256), 1 + rng.int(254)];
  frame[l3] = 0x40 | ihl;
  dv.setUint16(l3 + 2, tot);
  dv.setUint16(l3 + 4, rng.int(65536)); // id
  dv.setUint16(l3 + 6, spec.kind === 'fragment' ? 0x2000 | (1 + rng.int(100)) : 0x4000); // MF+offset, or DF
  frame[l3 + 8] = 64;
  frame[l3 + 9] = proto;
  frame.set(src, l3 + 12);
  frame.set(dst, l3 + 16);
  for (let i = 20; i < ihl * 4; i++) frame[l3 + i] = 1; // NOP options
  dv.setUint16(l3 + 10, ipChecksum(frame.subarray(l3, l3 + ihl * 4)));
  const l4 = l3 + ihl * 4;
  frame.set(rng.bytes(frame.length - l4), l4);
  if (proto === 17) {
    const dport = { dns: 53, ntp: 123, quic: 443, vxlan: 4789 }[spec.kind as string] ?? 1024 + rng.int(60000);
    dv.setUint16(l4, spec.sport ?? 1024 + rng.int(64000));
    dv.setUint16(l4 + 2, dport);
    dv.setUint16(l4 + 4, spec.kind === 'bad-udp' ? l4len + 1 + rng.int(100) : l4len);
    dv.setUint16(l4 + 6, 0);
  }
  if (spec.kind === 'bad-ipv4') {
    // one of: wrong version, IHL < 5, total length past the frame
    const how = rng.int(3);
    if (how === 0) frame[l3] = 0x60 | ihl;
    else if (how === 1) frame[l3] = 0x40 | rng.int(5);
    else dv.setUint16(l3 + 2, tot + 1 + rng.int(1000));
  }
  return frame;
}

export const classify: Workload = {
  name: 'classify',
  summary: 'classify one Ethernet/802.1Q/IPv4/UDP frame (kind chosen by the seed; 64 B UDP payload small, 1400 B large)',
  input(seed: number, scale: Scale): Uint8Array {
    const rng = new Prng(seed ^ 0xc1a55);
    const kind = FRAME_KINDS[(seed >>> 0) % FRAME_KINDS.length]!;
    return buildFrame({ kind, payload: CLASSIFY_PAYLOAD[scale], vlan: rng.chance(0.3), ihl: rng.chance(0.2) ? 5 + rng.int(11) : 5 }, rng);
  },
  expected(input: Uint8Array): Uint8Array {
    const b = input;
    const u16 = (o: number) => (b[o]! << 8) | b[o + 1]!;
    const line = (cls: number, extra = ''): Uint8Array =>
      ascii(`class=${cls} ${CLASS_NAMES[cls]} verdict=${CLASS_PASSES[cls] ? 'pass' : 'drop'}${extra}\n`);
    if (b.length < 14) return line(1);
    let l3 = 14;
    let type = u16(12);
    if (type === 0x8100) {
      if (b.length < 18) return line(1);
      type = u16(16);
      l3 = 18;
    }
    if (type !== 0x0800) return line(2, ` ethertype=0x${type.toString(16).padStart(4, '0')}`);
    if (b.length < l3 + 20) return line(3);
    const ihl = b[l3]! & 15;
    if (b[l3]! >> 4 !== 4 || ihl < 5) return line(3);
    const tot = u16(l3 + 2);
    if (tot < ihl * 4 || l3 + tot > b.length) return line(3);
    const proto = b[l3 + 9]!;
    const ip = ` proto=${proto} src=${[...b.subarray(l3 + 12, l3 + 16)].join('.')} dst=${[...b.subarray(l3 + 16, l3 + 20)].join('.')}`;
    if ((u16(l3 + 6) & 0x1fff) !== 0) return line(4, ip);
    if (proto === 6) return line(5, ip);
    if (proto === 1) return line(6, ip);
    if (proto !== 17) return line(7, ip);
    const l4 = l3 + ihl * 4;
    if (ihl * 4 + 8 > tot) return line(8, ip);
    const ulen = u16(l4 + 4);
    if (ulen < 8 || ihl * 4 + ulen > tot) return line(8, ip);
    const sport = u16(l4);
    const dport = u16(l4 + 2);
    const cls = ({ 53: 9, 123: 10, 443: 11, 4789: 12 } as Record<number, number>)[dport] ?? 13;
    return line(cls, `${ip} sport=${sport} dport=${dport}`);
  },
};

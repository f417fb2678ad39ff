// The byte layouts of bpf/roce.h, roce.bpf.c and roce-loss.bpf.c as user space reads and writes
// them. The loaders check the map sizes against these at load, so a change on one side only fails
// loudly instead of misreading counters.

/** enum roce_class */
export const ROCE_CLASSES = ['send', 'write', 'read_req', 'read_resp', 'ack', 'atomic', 'atomic_ack', 'cnp'] as const;
export type RoceClass = (typeof ROCE_CLASSES)[number];

/** enum roce_verdict, then roce.bpf.c's extra global counters, in fxh_roce_glob's order */
export const ROCE_GLOBAL = ['roce', 'not_roce', 'trunc_eth', 'trunc_ip', 'ip_fragment', 'trunc_udp', 'trunc_bth', 'bad_opcode', 'trunc_ext', 'bad_length', 'qp_table_full', 'seen'] as const;
export type RoceGlobalName = (typeof ROCE_GLOBAL)[number];
/** the reasons a RoCEv2 packet (UDP 4791) is malformed: counted, never attributed to a QP */
export const MALFORMED: readonly RoceGlobalName[] = ['trunc_eth', 'trunc_ip', 'ip_fragment', 'trunc_udp', 'trunc_bth', 'bad_opcode', 'trunc_ext', 'bad_length'];

/** AETH NAK codes 0..4 */
export const NAK_CODES = ['psn_seq_error', 'invalid_request', 'remote_access_error', 'remote_op_error', 'invalid_rd_request'] as const;

export const QP_KEY_SIZE = 20;
export const QP_STATS_SIZE = 488;
export const RTT_BUCKETS = 16;
const N = ROCE_CLASSES.length;

export type ByClass = Record<RoceClass, number>;

export interface QpCounters {
  /** destination address of the packets (IPv4 dotted, or IPv6) and destination QPN: the QP they reach */
  address: string;
  qpn: number;
  /** every packet, retransmissions included */
  pkts: ByClass;
  /** operations: first or only packets of a message, first arrivals only */
  ops: ByClass;
  /** payload bytes (after extension headers, without pad and ICRC) of first arrivals */
  bytes: ByClass;
  ackReq: number;
  /** PSNs skipped in the request stream this QP received */
  psnMissing: number;
  gapEvents: number;
  /** times the request stream went back to a PSN already passed (go-back-N resends, duplicates) */
  psnBehind: number;
  /** request packets whose PSN had already arrived (not in ops and bytes, which count first arrivals) */
  retransmitted: number;
  acks: number;
  naks: Record<(typeof NAK_CODES)[number], number>;
  rnrNaks: number;
  rtt: { count: number; sumNs: number; minNs: number; maxNs: number; hist: number[] };
  firstNs: number;
  lastNs: number;
}

function addrText(b: Buffer, off: number): string {
  const w = [0, 1, 2, 3].map((i) => b.readUInt32BE(off + 4 * i));
  if (w[0] === 0 && w[1] === 0 && w[2] === 0xffff) return [...b.subarray(off + 12, off + 16)].join('.');
  const parts: string[] = [];
  for (let i = 0; i < 8; i++) parts.push(b.readUInt16BE(off + 2 * i).toString(16));
  return parts.join(':');
}

/** 16 bytes of an address as the programs store it (IPv4 mapped into IPv6) */
export function addrBytes(address: string): Buffer {
  const out = Buffer.alloc(16);
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  if (v4) {
    const o = v4.slice(1).map(Number);
    if (o.some((x) => x > 255)) throw new Error(`bad IPv4 address ${address}`);
    out.writeUInt16BE(0xffff, 10);
    out.set(o, 12);
    return out;
  }
  const halves = address.split('::');
  if (halves.length > 2 || !/^[0-9a-fA-F:]+$/.test(address)) throw new Error(`bad address ${JSON.stringify(address)} (IPv4 dotted or IPv6)`);
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const groups = [...head, ...Array(fill).fill('0'), ...tail];
  if (groups.length !== 8 || groups.some((g) => g.length > 4)) throw new Error(`bad IPv6 address ${address}`);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), 2 * i));
  return out;
}

export function qpKey(address: string, qpn: number): Buffer {
  const k = Buffer.alloc(QP_KEY_SIZE);
  addrBytes(address).copy(k, 0);
  k.writeUInt32LE(qpn, 16);
  return k;
}

export function decodeQp(key: Buffer, v: Buffer): QpCounters {
  const u = (off: number) => Number(v.readBigUInt64LE(off));
  const byClass = (base: number) => Object.fromEntries(ROCE_CLASSES.map((c, i) => [c, u(base + 8 * i)])) as ByClass;
  const o = 3 * N * 8; // after pkts, ops, bytes
  return {
    address: addrText(key, 0),
    qpn: key.readUInt32LE(16),
    pkts: byClass(0),
    ops: byClass(N * 8),
    bytes: byClass(2 * N * 8),
    ackReq: u(o),
    psnMissing: u(o + 8),
    gapEvents: u(o + 16),
    psnBehind: u(o + 24),
    acks: u(o + 32),
    naks: Object.fromEntries(NAK_CODES.map((c, i) => [c, u(o + 40 + 8 * i)])) as QpCounters['naks'],
    rnrNaks: u(o + 80),
    rtt: { count: u(o + 88), sumNs: u(o + 96), minNs: u(o + 104), maxNs: u(o + 112), hist: Array.from({ length: RTT_BUCKETS }, (_, i) => u(o + 120 + 8 * i)) },
    firstNs: u(o + 120 + 8 * RTT_BUCKETS),
    lastNs: u(o + 128 + 8 * RTT_BUCKETS),
    retransmitted: u(o + 136 + 8 * RTT_BUCKETS),
  };
}

// roce-loss.bpf.c
export const RL_RULES = 8;
export const RL_LOG = 256;
export const RL_RULE_SIZE = 44;
export const RL_GLOBAL = ['seen', 'roce', 'dropped', 'next_missing'] as const;

/** a rule's qpn that selects every QP */
export const ANY_QP = 'any' as const;

export type LossRule =
  | { kind: 'nth'; qpn: number | typeof ANY_QP; everyN: number; address?: string; maxDrops?: number; requestsOnly?: boolean }
  | { kind: 'psn-range'; qpn: number | typeof ANY_QP; psnLo: number; psnHi: number; address?: string; maxDrops?: number; requestsOnly?: boolean };

const U24 = 0xffffff;

export function encodeRule(r: LossRule): Buffer {
  const bad = (m: string) => new Error(`loss rule ${JSON.stringify(r)}: ${m}`);
  if (r.qpn !== ANY_QP && (!Number.isInteger(r.qpn) || r.qpn < 0 || r.qpn > U24)) throw bad(`qpn must be an integer in 0..2^24-1 or '${ANY_QP}'`);
  if (r.maxDrops !== undefined && (!Number.isInteger(r.maxDrops) || r.maxDrops < 0 || r.maxDrops > 0xffffffff)) throw bad('maxDrops must be a non-negative integer (0: no limit)');
  const b = Buffer.alloc(RL_RULE_SIZE);
  b.writeUInt32LE(r.qpn === ANY_QP ? 0xffffffff : r.qpn, 4);
  if (r.address) addrBytes(r.address).copy(b, 8);
  if (r.kind === 'nth') {
    if (!Number.isInteger(r.everyN) || r.everyN < 1 || r.everyN > 0xffffffff) throw bad('everyN must be an integer >= 1');
    b.writeUInt32LE(1, 0);
    b.writeUInt32LE(r.everyN, 24);
  } else if (r.kind === 'psn-range') {
    for (const [n, x] of [['psnLo', r.psnLo], ['psnHi', r.psnHi]] as const) if (!Number.isInteger(x) || x < 0 || x > U24) throw bad(`${n} must be a PSN in 0..2^24-1`);
    b.writeUInt32LE(2, 0);
    b.writeUInt32LE(r.psnLo, 28);
    b.writeUInt32LE(r.psnHi, 32);
  } else {
    throw bad(`kind must be 'nth' or 'psn-range'`);
  }
  b.writeUInt32LE(r.maxDrops ?? 0, 36);
  b.writeUInt32LE(r.requestsOnly ? 1 : 0, 40);
  return b;
}

// RoCEv2 per-QP telemetry: bpf/roce.bpf.c loaded (not attached; roce-attach.ts attaches it to
// netdevs), its maps read into plain objects.
//
//   const t = loadRoceTelemetry({ pathMtu: 1024 })
//   t.prog.testRun({ dataIn: packet })   // BPF_PROG_RUN on a crafted packet
//   t.counters()                         // { global, malformed, qps: [...] }
//   t.close()                            // idempotent; also on exit/SIGINT/SIGTERM (libbpf registry)
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../paths.js';
import { BpfObject, bpfCapability, type BpfCapability, type BpfMap, type BpfProgram, type OpenOptions } from './libbpf.js';
import { MALFORMED, QP_KEY_SIZE, QP_STATS_SIZE, ROCE_GLOBAL, decodeQp, qpKey, type QpCounters, type RoceGlobalName } from './roce-layout.js';

export const ROCE_OBJECT = path.join(repoRoot, 'bpf', 'build', 'roce.bpf.o');
export const PROG_ROCE = 'fxh_roce';

export interface RoceCounters {
  /** packets by parse outcome: roce (counted per QP), not_roce, the malformed reasons, qp_table_full, seen (all) */
  global: Record<RoceGlobalName, number>;
  /** sum of the malformed reasons */
  malformed: number;
  qps: QpCounters[];
}

export interface RoceTelemetry {
  readonly object: BpfObject;
  readonly prog: BpfProgram;
  readonly closed: boolean;
  counters(): RoceCounters;
  /** one QP's counters (destination address, QPN), or null when it saw nothing */
  qp(address: string, qpn: number): QpCounters | null;
  /** zeroes every counter and forgets PSN state and pending request stamps */
  reset(): void;
  close(): void;
}

export interface TelemetryOptions {
  object?: string;
  /** path MTU in bytes: how many PSNs a read request consumes (default 1024, SoftRoCE over a 1500-byte netdev); 0: resynchronise after reads */
  pathMtu?: number;
  open?: OpenOptions;
}

/** Whether the telemetry can load here, and why not. */
export function roceCapability(object = ROCE_OBJECT): BpfCapability {
  const c = bpfCapability();
  if (!c.ok) return c;
  if (!fs.existsSync(object)) return { ok: false, reason: `${path.relative(repoRoot, object)} is not built (node bpf/build.mjs)` };
  return { ok: true };
}

function checkShape(m: BpfMap, key: number, value: number): void {
  if (m.keySize !== key || m.valueSize !== value) {
    throw new Error(`map ${m.name}: key ${m.keySize} B, value ${m.valueSize} B in the object, but harness/bpf/roce-layout.ts reads ${key} B / ${value} B (rebuild, or update the layout)`);
  }
}

const u32 = (i: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(i);
  return b;
};

/** Sums a per-CPU u64 array slot. */
export function sumPerCpu(b: Buffer | null): number {
  let t = 0n;
  if (b) for (let o = 0; o + 8 <= b.length; o += 8) t += b.readBigUInt64LE(o);
  return Number(t);
}

export function clearMap(m: BpfMap): void {
  for (const k of m.keys()) m.delete(k);
}

export function loadRoceTelemetry(opts: TelemetryOptions = {}): RoceTelemetry {
  const pmtu = opts.pathMtu ?? 1024;
  if (!Number.isInteger(pmtu) || pmtu < 0 || pmtu > 0xffffffff) throw new Error(`pathMtu ${pmtu}: want a non-negative integer number of bytes`);
  const obj = BpfObject.open(opts.object ?? ROCE_OBJECT, opts.open);
  try {
    obj.load();
    const prog = obj.program(PROG_ROCE);
    const qps = obj.map('fxh_roce_qp');
    const pend = obj.map('fxh_roce_pend');
    const glob = obj.map('fxh_roce_glob');
    const cfg = obj.map('fxh_roce_cfg');
    checkShape(qps, QP_KEY_SIZE, QP_STATS_SIZE);
    checkShape(glob, 4, 8);
    if (glob.maxEntries !== ROCE_GLOBAL.length) throw new Error(`map fxh_roce_glob has ${glob.maxEntries} counters, roce-layout.ts names ${ROCE_GLOBAL.length}`);
    const c = Buffer.alloc(8);
    c.writeUInt32LE(pmtu, 0);
    cfg.update(u32(0), c);
    let closed = false;
    const live = () => {
      if (closed) throw new Error('RoCE telemetry is closed');
    };
    return {
      object: obj,
      prog,
      get closed() {
        return closed;
      },
      counters(): RoceCounters {
        live();
        const global = Object.fromEntries(ROCE_GLOBAL.map((n, i) => [n, sumPerCpu(glob.lookup(u32(i)))])) as Record<RoceGlobalName, number>;
        const list: QpCounters[] = [];
        for (const k of qps.keys()) {
          const v = qps.lookup(k);
          if (v) list.push(decodeQp(k, v));
        }
        list.sort((a, b) => a.address.localeCompare(b.address) || a.qpn - b.qpn);
        return { global, malformed: MALFORMED.reduce((s, n) => s + global[n], 0), qps: list };
      },
      qp(address: string, qpn: number): QpCounters | null {
        live();
        const k = qpKey(address, qpn);
        const v = qps.lookup(k);
        return v ? decodeQp(k, v) : null;
      },
      reset(): void {
        live();
        clearMap(qps);
        clearMap(pend);
        const zero = Buffer.alloc(glob.lookupSize);
        for (let i = 0; i < ROCE_GLOBAL.length; i++) glob.update(u32(i), zero);
      },
      close(): void {
        if (closed) return;
        closed = true;
        obj.close();
      },
    };
  } catch (e) {
    obj.close();
    throw e;
  }
}

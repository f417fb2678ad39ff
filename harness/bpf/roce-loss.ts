// Loss injection for RoCEv2: bpf/roce-loss.bpf.c loaded, its rules written, its drops read back.
// Packets it does not drop go on (tail call) to the telemetry program given as `next`, so the
// telemetry counts exactly what the receiver gets.
//
//   const loss = loadRoceLoss({ next: telemetry.prog.fd })
//   loss.setRule(0, { kind: 'nth', qpn: 17, everyN: 50, requestsOnly: true })
//   loss.ruleStats(0)  // { selected, dropped }
//   loss.drops()       // the last (up to 256) dropped packets: qpn, psn, opcode, rule
import path from 'node:path';
import { repoRoot } from '../paths.js';
import { BpfObject, type BpfProgram } from './libbpf.js';
import { RL_GLOBAL, RL_LOG, RL_RULES, RL_RULE_SIZE, encodeRule, type LossRule } from './roce-layout.js';

export const ROCE_LOSS_OBJECT = path.join(repoRoot, 'bpf', 'build', 'roce-loss.bpf.o');
export const PROG_ROCE_LOSS = 'fxh_roce_loss';

export interface DroppedPacket {
  qpn: number;
  psn: number;
  opcode: number;
  rule: number;
}

export interface RoceLoss {
  readonly object: BpfObject;
  readonly prog: BpfProgram;
  readonly closed: boolean;
  setRule(slot: number, rule: LossRule): void;
  clearRule(slot: number): void;
  ruleStats(slot: number): { selected: number; dropped: number };
  /** RoCEv2 packets looked at, dropped, and passed on with no next program to call */
  global(): Record<(typeof RL_GLOBAL)[number], number>;
  /** the dropped packets in drop order (the last RL_LOG of them) */
  drops(): DroppedPacket[];
  close(): void;
}

export interface LossOptions {
  /** fd of the XDP program that gets the packets not dropped (the telemetry); none: they pass */
  next?: number;
  object?: string;
}

const u32 = (i: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(i);
  return b;
};

function slotOf(slot: number): Buffer {
  if (!Number.isInteger(slot) || slot < 0 || slot >= RL_RULES) throw new RangeError(`loss rule slot ${slot}: want 0..${RL_RULES - 1}`);
  return u32(slot);
}

export function loadRoceLoss(opts: LossOptions = {}): RoceLoss {
  const obj = BpfObject.open(opts.object ?? ROCE_LOSS_OBJECT);
  try {
    obj.load();
    const prog = obj.program(PROG_ROCE_LOSS);
    const rules = obj.map('fxh_rl_rules');
    const state = obj.map('fxh_rl_state');
    const log = obj.map('fxh_rl_log');
    const glob = obj.map('fxh_rl_glob');
    if (rules.valueSize !== RL_RULE_SIZE || rules.maxEntries !== RL_RULES || log.maxEntries !== RL_LOG || glob.maxEntries !== RL_GLOBAL.length) {
      throw new Error(`${path.basename(obj.path)} does not match harness/bpf/roce-layout.ts (rule ${rules.valueSize} B x ${rules.maxEntries}, log ${log.maxEntries}, ${glob.maxEntries} counters); rebuild it`);
    }
    // a prog array slot holds a reference to the program; it is cleared when this object closes
    if (opts.next !== undefined) obj.map('fxh_rl_next').update(u32(0), u32(opts.next));
    let closed = false;
    const live = () => {
      if (closed) throw new Error('RoCE loss injection is closed');
    };
    const counter = (i: number) => Number(glob.lookup(u32(i))!.readBigUInt64LE(0));
    return {
      object: obj,
      prog,
      get closed() {
        return closed;
      },
      setRule(slot, rule) {
        live();
        const k = slotOf(slot);
        const enc = encodeRule(rule);
        rules.update(k, Buffer.alloc(RL_RULE_SIZE)); // off while its state restarts
        state.update(k, Buffer.alloc(16));
        rules.update(k, enc);
      },
      clearRule(slot) {
        live();
        rules.update(slotOf(slot), Buffer.alloc(RL_RULE_SIZE));
      },
      ruleStats(slot) {
        live();
        const v = state.lookup(slotOf(slot))!;
        return { selected: Number(v.readBigUInt64LE(0)), dropped: Number(v.readBigUInt64LE(8)) };
      },
      global() {
        live();
        return Object.fromEntries(RL_GLOBAL.map((n, i) => [n, counter(i)])) as Record<(typeof RL_GLOBAL)[number], number>;
      },
      drops() {
        live();
        const total = counter(RL_GLOBAL.indexOf('dropped'));
        const out: DroppedPacket[] = [];
        for (let i = Math.max(0, total - RL_LOG); i < total; i++) {
          const v = log.lookup(u32(i % RL_LOG))!;
          out.push({ qpn: v.readUInt32LE(0), psn: v.readUInt32LE(4), opcode: v.readUInt32LE(8), rule: v.readUInt32LE(12) });
        }
        return out;
      },
      close() {
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

// The kernel side of an RDMA operation: bpf/roce-kern.bpf.c's kprobes on SoftRoCE (rxe) stages,
// their stamps drained from the ring buffer, and one operation's path cut into stage times.
//
//   const k = attachRoceKern()      // stages whose function this kernel lacks are in k.skipped
//   k.start(); ...traffic...; const ev = k.stop()
//   attribute(ev)                    // per operation: the time between consecutive stages
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../paths.js';
import { BpfObject, RingBuffer, TRACEFS, ensureTracefs, type AttachHandle } from './libbpf.js';

/** null when this kernel can attach kprobes, else why not (this host's kernel has none) */
export function kprobesUnavailable(): string | null {
  if (fs.existsSync('/sys/bus/event_source/devices/kprobe/type')) return null;
  try {
    ensureTracefs();
  } catch (e) {
    return `no kprobe PMU and tracefs cannot be mounted: ${(e as Error).message}`;
  }
  if (fs.existsSync(path.join(TRACEFS, 'kprobe_events'))) return null;
  return 'this kernel has no kprobes (no kprobe PMU in /sys/bus/event_source/devices, no kprobe_events in tracefs)';
}

export const ROCE_KERN_OBJECT = path.join(repoRoot, 'bpf', 'build', 'roce-kern.bpf.o');

/** in the order of one operation's path; index = the stage number the program stamps */
export const RK_STAGES = [
  { name: 'post', prog: 'fxh_rk_post', fn: 'rxe_post_send' },
  { name: 'requester', prog: 'fxh_rk_req', fn: 'rxe_requester' },
  { name: 'xmit', prog: 'fxh_rk_xmit', fn: 'rxe_xmit_packet' },
  { name: 'udp_recv', prog: 'fxh_rk_udp', fn: 'rxe_udp_encap_recv' },
  { name: 'rcv', prog: 'fxh_rk_rcv', fn: 'rxe_rcv' },
  { name: 'responder', prog: 'fxh_rk_resp', fn: 'rxe_responder' },
  { name: 'completer', prog: 'fxh_rk_comp', fn: 'rxe_completer' },
  { name: 'cq_post', prog: 'fxh_rk_cqpost', fn: 'rxe_cq_post' },
] as const;
export type StageName = (typeof RK_STAGES)[number]['name'];

export interface RkEvent {
  ts: number;
  stage: StageName;
  cpu: number;
  pid: number;
}

export interface KernTrace {
  readonly attached: string[];
  /** stages not probed, with the kernel's reason (their function is missing here) */
  readonly skipped: { stage: StageName; fn: string; reason: string }[];
  start(): void;
  /** stops stamping and returns every stamp since start(), in time order */
  stop(): RkEvent[];
  /** stamps lost because the ring buffer was full */
  lost(): number;
  close(): void;
}

export function attachRoceKern(opts: { object?: string; functions?: Partial<Record<StageName, string>> } = {}): KernTrace {
  const obj = BpfObject.open(opts.object ?? ROCE_KERN_OBJECT);
  const links: AttachHandle[] = [];
  let rb: RingBuffer | null = null;
  const close = () => {
    for (const l of links.splice(0)) {
      try {
        l.detach();
      } catch {}
    }
    rb?.free();
    rb = null;
    obj.close();
  };
  try {
    obj.load();
    const cfg = obj.map('fxh_rk_cfg');
    const count = obj.map('fxh_rk_count');
    const attached: string[] = [];
    const skipped: KernTrace['skipped'] = [];
    const noKprobes = kprobesUnavailable();
    for (const s of RK_STAGES) {
      if (noKprobes) {
        skipped.push({ stage: s.name, fn: opts.functions?.[s.name] ?? s.fn, reason: noKprobes });
        continue;
      }
      const fn = opts.functions?.[s.name] ?? s.fn;
      try {
        links.push(obj.program(s.prog).attachKprobe(fn));
        attached.push(`${s.prog} -> kprobe ${fn}`);
      } catch (e) {
        skipped.push({ stage: s.name, fn, reason: (e as Error).message });
      }
    }
    let events: RkEvent[] = [];
    rb = new RingBuffer(obj.map('fxh_rk_rb'), (d) => {
      events.push({ ts: Number(d.readBigUInt64LE(0)), stage: RK_STAGES[d.readUInt32LE(8)]?.name ?? 'post', cpu: d.readUInt32LE(12), pid: d.readUInt32LE(16) });
    });
    const key0 = Buffer.alloc(4);
    const set = (on: number) => {
      const v = Buffer.alloc(4);
      v.writeUInt32LE(on);
      cfg.update(key0, v);
    };
    return {
      attached,
      skipped,
      start() {
        events = [];
        set(1);
      },
      stop() {
        set(0);
        while (rb!.consume() > 0);
        return events.sort((a, b) => a.ts - b.ts);
      },
      lost() {
        const k = Buffer.alloc(4);
        k.writeUInt32LE(RK_STAGES.length);
        const v = count.lookup(k);
        let t = 0n;
        if (v) for (let o = 0; o + 8 <= v.length; o += 8) t += v.readBigUInt64LE(o);
        return Number(t);
      },
      close,
    };
  } catch (e) {
    close();
    throw e;
  }
}

/** the path of one signalled operation with one in flight: request out, ACK back, completion */
export const OP_PATH: StageName[] = ['post', 'requester', 'xmit', 'udp_recv', 'rcv', 'responder', 'xmit', 'udp_recv', 'rcv', 'completer', 'cq_post'];
/** the name of each step between two consecutive stamps of OP_PATH */
export const OP_STEPS = ['post->requester', 'requester->xmit', 'wire (request)', 'udp->rxe_rcv', 'rcv->responder', 'responder->ack xmit', 'wire (ack)', 'udp->rxe_rcv (ack)', 'rcv->completer', 'completer->cq_post'] as const;

/**
 * Cuts the stamps into operations: each 'post' starts one, which then takes the first stamp of
 * each next stage of OP_PATH (other stamps in between, such as a requester run finding nothing to
 * do, are passed over). Operations that do not reach the end before the next post are dropped.
 * Returns per complete operation the time of each step in ns.
 */
export function attribute(events: readonly RkEvent[], path: readonly StageName[] = OP_PATH): number[][] {
  const ops: number[][] = [];
  let cur: number[] | null = null;
  for (const e of events) {
    if (e.stage === path[0]) {
      cur = [e.ts];
      continue;
    }
    if (!cur) continue;
    if (e.stage === path[cur.length]) {
      cur.push(e.ts);
      if (cur.length === path.length) {
        ops.push(cur.slice(1).map((t, i) => t - cur![i]!));
        cur = null;
      }
    }
  }
  return ops;
}

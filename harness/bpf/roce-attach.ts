// Attaching the RoCEv2 telemetry (and optionally the loss injection in front of it) to real
// netdevs, possibly inside network namespaces, and always detaching.
//
//   await withRoceTelemetry([{ netdev: 'fxa0', netns: 'fxa' }, { netdev: 'fxb0', netns: 'fxb' }],
//                           async (s) => { ...run traffic...; return s.telemetry.counters(); },
//                           { loss: [{ kind: 'nth', qpn: 'any', everyN: 100, requestsOnly: true }] })
//
// Attachments are XDP bpf_links (see bpf/roce.bpf.c for why XDP): the kernel removes them when
// their last fd closes, so also when this process is SIGKILLed; detach() and the libbpf registry's
// exit and signal hooks close them earlier. One object is attached to every target, so a request
// seen on one end and its ACK seen on the other meet in the same maps.
import fs from 'node:fs';
import { type AttachHandle, type BpfProgram } from './libbpf.js';
import { LibbpfError } from './libbpf/errors.js';
import { L, check } from './libbpf/ffi.js';
import { Handle } from './libbpf/registry.js';
import { ifindexHere, inNetns } from './netns-enter.js';
import { loadRoceLoss, type RoceLoss } from './roce-loss.js';
import { loadRoceTelemetry, type RoceTelemetry, type TelemetryOptions } from './roce.js';
import type { LossRule } from './roce-layout.js';

export interface NetdevTarget {
  netdev: string;
  /** a named network namespace (ip netns); absent: this process's */
  netns?: string;
}

export interface RoceOptions extends TelemetryOptions {
  /** loss rules (slots 0..n-1): the loss program goes in front of the telemetry on every target */
  loss?: LossRule[];
  lossObject?: string;
  /** native (default): the driver's XDP hook (veth then receives through NAPI); generic: the
   *  stack's skb-level hook, which leaves the driver's receive path as it was */
  xdpMode?: 'native' | 'generic';
  /** 'pass': attach fxh_roce_pass (does nothing) instead, to measure the hook without the telemetry */
  program?: 'telemetry' | 'pass';
}

const BPF_XDP = 37;
const XDP_FLAGS_SKB_MODE = 2;

/** an XDP bpf_link; generic mode needs bpf_link_create's flags, which bpf_program__attach_xdp does not take */
function attachXdp(prog: BpfProgram, ifindex: number, mode: 'native' | 'generic'): AttachHandle {
  if (mode === 'native') return prog.attachXdp(ifindex);
  const opts = Buffer.alloc(16); // struct bpf_link_create_opts { size_t sz; __u32 flags; }
  opts.writeBigUInt64LE(16n, 0);
  opts.writeUInt32LE(XDP_FLAGS_SKB_MODE, 8);
  const fd = check(`bpf_link_create XDP (generic) ${prog.name} ifindex ${ifindex}`, L().bpf_link_create(prog.fd, ifindex, BPF_XDP, opts as never));
  return new Handle(`xdp generic link fd ${fd}: ${prog.name} -> ifindex ${ifindex}`, 0, () => fs.closeSync(fd));
}

export interface RoceSession {
  readonly telemetry: RoceTelemetry;
  readonly loss: RoceLoss | null;
  /** one line per attachment: program -> netdev (namespace, ifindex) */
  readonly attachments: string[];
  readonly detached: boolean;
  detach(): void;
}

const where = (t: NetdevTarget) => `${t.netdev}${t.netns ? ` in netns ${t.netns}` : ''}`;

/** Loads the programs and attaches them to every target; on any failure releases what it made and throws. */
export function attachRoce(targets: NetdevTarget | NetdevTarget[], opts: RoceOptions = {}): RoceSession {
  const list = Array.isArray(targets) ? targets : [targets];
  if (list.length === 0) throw new Error('attachRoce: no netdev given');
  const links: AttachHandle[] = [];
  let telemetry: RoceTelemetry | null = null;
  let loss: RoceLoss | null = null;
  const release = () => {
    const errors: string[] = [];
    for (const l of links.splice(0).reverse()) {
      try {
        l.detach();
      } catch (e) {
        errors.push(`${l.description}: ${(e as Error).message}`);
      }
    }
    loss?.close();
    telemetry?.close();
    if (errors.length) throw new Error(`detaching the RoCE programs: ${errors.join('; ')}`);
  };
  try {
    telemetry = loadRoceTelemetry(opts);
    if (opts.loss) {
      loss = loadRoceLoss({ next: telemetry.prog.fd, object: opts.lossObject });
      opts.loss.forEach((r, i) => loss!.setRule(i, r));
    }
    const prog = opts.program === 'pass' ? telemetry.object.program('fxh_roce_pass') : (loss?.prog ?? telemetry.prog);
    if (opts.program === 'pass' && loss) throw new Error(`attachRoce: program 'pass' and loss rules exclude each other`);
    const mode = opts.xdpMode ?? 'native';
    const attachments: string[] = [];
    for (const t of list) {
      inNetns(t.netns, () => {
        const ifindex = ifindexHere(t.netdev, t.netns ? `netns ${t.netns}` : 'this network namespace');
        try {
          links.push(attachXdp(prog, ifindex, mode));
        } catch (e) {
          if (e instanceof LibbpfError && e.errno === 16) throw new Error(`${where(t)} already has an XDP program (ip link show ${t.netdev}): ${e.message}`);
          throw new Error(`attaching ${prog.name} to ${where(t)}: ${(e as Error).message}`);
        }
        attachments.push(`${prog.name}${loss ? ` (then ${telemetry!.prog.name})` : ''} -> ${where(t)} ifindex ${ifindex} (XDP ${mode} bpf_link)`);
      });
    }
    let detached = false;
    return {
      telemetry,
      loss,
      attachments,
      get detached() {
        return detached;
      },
      detach() {
        if (detached) return;
        detached = true;
        release();
      },
    };
  } catch (e) {
    try {
      release();
    } catch {}
    throw e;
  }
}

/** Attaches, runs `fn` with the session, and detaches whatever happens (fn's error wins over a detach error). */
export async function withRoceTelemetry<T>(targets: NetdevTarget | NetdevTarget[], fn: (s: RoceSession) => Promise<T> | T, opts: RoceOptions = {}): Promise<T> {
  const s = attachRoce(targets, opts);
  let ok = false;
  try {
    const r = await fn(s);
    ok = true;
    return r;
  } finally {
    if (ok) s.detach();
    else {
      try {
        s.detach();
      } catch {}
    }
  }
}

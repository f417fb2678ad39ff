// The guest half of the rdma-ebpf experiment: runs INSIDE the SoftRoCE guest (as root), measures,
// and writes one JSON file the host half (rdma-ebpf.ts) turns into rows, proofs and figures.
//
//   node build/harness/experiments/rdma-ebpf-guest.js --plan plan.json --out result.json
//
// Phases, all between the guest's two rxe devices (A client, B server) over one veth (rdma-ebpf-net.ts):
//   proof     one perftest per operation with the telemetry on both veth ends, lossless
//   loss      the loss program in front of the telemetry, dropping every Nth request packet to
//             the server: a bandwidth run (many packets in flight: a drop shows as a PSN gap and a
//             NAK) and a latency run (one in flight: a drop costs a retransmission timeout),
//             each beside a lossless run of the same size
//   kernel    one write and one send at a time, rxe's stages stamped by kprobes (roce-kern.bpf.c)
//   overhead  write latency in blocks: detached, the telemetry and the do-nothing program in native
//             and generic XDP mode, rounds of all arms in seeded shuffled orders
import fs from 'node:fs';
import { attachRoce, type RoceSession } from '../bpf/roce-attach.js';
import type { RoceCounters } from '../bpf/roce.js';
import type { LossRule } from '../bpf/roce-layout.js';
import type { DroppedPacket } from '../bpf/roce-loss.js';
import { createRng, shuffle } from '../measure/random.js';
import { guestRxePair, type RxePair } from './rdma-ebpf-net.js';
import { attachRoceKern, attribute } from '../bpf/roce-kern.js';
import { TRACEFS, ensureTracefs } from '../bpf/libbpf.js';
import { perftest, type PerftestKind, type PerftestRun } from './rdma-ebpf-perftest.js';

export interface GuestPlan {
  seed: number;
  /** proof phase: [kind, iterations, size] */
  proof: [PerftestKind, number, number][];
  loss: { everyN: number; bw: [number, number]; lat: [number, number]; latEveryN: number } | null;
  /** kind: the perftest latency test; events: both ends sleep on CQ events instead of busy-polling (send_lat only) */
  overhead: { blocks: number; iters: number; size: number; arms: Arm[]; kind: PerftestKind; events: boolean } | null;
  /** kernel phase: one operation in flight at a time (bandwidth test, tx depth 1, every WR signalled), rxe stages stamped by kprobes */
  kernel: { iters: number; size: number; kinds: PerftestKind[] } | null;
  pathMtu: number;
  /** XDP mode of the proof and loss phases */
  xdpMode: 'native' | 'generic';
}

/** how the programs sit on the veth: not at all, the telemetry, or the do-nothing program, in either XDP mode */
export type Arm = 'detached' | 'native' | 'native-pass' | 'generic' | 'generic-pass';

export interface GuestPhase {
  phase: 'proof' | 'loss' | 'loss-baseline' | 'overhead' | 'kernel';
  arm: Arm;
  block?: number;
  rule?: LossRule;
  run: Omit<PerftestRun, 'clientOutput' | 'serverOutput'> & { clientTail: string; serverTail: string };
  counters?: RoceCounters;
  loss?: { selected: number; dropped: number; drops: DroppedPacket[] };
  /** the session's attachment lines */
  attachments?: string[];
  /** kernel phase: per complete operation the time of each step of OP_PATH (ns) */
  stages?: { attached: string[]; skipped: { stage: string; fn: string; reason: string }[]; lost: number; events: number; ops: number[][] };
}

export interface GuestResult {
  kernel: string;
  /** the two rxe devices and their netdevs and addresses */
  pair?: RxePair;
  /** tracepoint systems of the guest kernel that concern RDMA (rdma_core, rdma_cma, ib_*) */
  rdmaTracepoints?: string[];
  notes: string[];
  phases: GuestPhase[];
  error?: string;
}

let port = 18515;

async function once(pair: RxePair, p: GuestResult, phase: GuestPhase['phase'], kind: PerftestKind, iters: number, size: number, o: { arm: Arm; rule?: LossRule; block?: number; pathMtu: number; unsorted?: boolean; extra?: string[] }): Promise<void> {
  let s: RoceSession | null = null;
  try {
    if (o.arm !== 'detached') {
      const [mode, pass] = o.arm.split('-') as ['native' | 'generic', string | undefined];
      s = attachRoce([{ netdev: pair.netdevA }, { netdev: pair.netdevB }], { pathMtu: o.pathMtu, loss: o.rule ? [o.rule] : undefined, xdpMode: mode, program: pass ? 'pass' : 'telemetry' });
    }
    const r = await perftest(pair, kind, iters, size, { port: port++, unsorted: o.unsorted, extra: o.extra });
    const { clientOutput, serverOutput, ...rest } = r;
    const ph: GuestPhase = { phase, arm: o.arm, block: o.block, rule: o.rule, run: { ...rest, clientTail: clientOutput.slice(-3000), serverTail: serverOutput.slice(-1500) } };
    if (s && !o.arm.endsWith('-pass')) {
      ph.counters = s.telemetry.counters();
      ph.attachments = s.attachments;
      if (s.loss) ph.loss = { ...s.loss.ruleStats(0), drops: s.loss.drops() };
    }
    p.phases.push(ph);
    process.stderr.write(`rdma-ebpf guest: ${phase} ${kind} n=${iters} s=${size} arm=${o.arm} exit ${r.clientExit}/${r.serverExit} in ${r.wallMs} ms\n`);
  } finally {
    s?.detach();
  }
}

/** Runs the plan, adding to `out` as it goes (so a failure keeps what was measured). */
export async function runGuestPlan(plan: GuestPlan, out: GuestResult): Promise<void> {
  out.kernel = fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  const pair = guestRxePair();
  out.pair = pair;
  out.notes.push(`guest network: ${pair.devA} on ${pair.netdevA} (${pair.addrA}) and ${pair.devB} on ${pair.netdevB} (${pair.addrB}), the guest's own set-up (harness/rdma/guest-net.sh)`);
  const pathMtu = plan.pathMtu;
  const arm: Arm = plan.xdpMode;
  for (const [kind, n, size] of plan.proof) await once(pair, out, 'proof', kind, n, size, { arm, pathMtu });
  if (plan.loss) {
    const rule: LossRule = { kind: 'nth', qpn: 'any', address: pair.addrB, requestsOnly: true, everyN: plan.loss.everyN };
    await once(pair, out, 'loss-baseline', 'write_bw', plan.loss.bw[0], plan.loss.bw[1], { arm, pathMtu });
    await once(pair, out, 'loss', 'write_bw', plan.loss.bw[0], plan.loss.bw[1], { arm, rule, pathMtu });
    await once(pair, out, 'loss-baseline', 'write_lat', plan.loss.lat[0], plan.loss.lat[1], { arm, pathMtu, unsorted: true });
    await once(pair, out, 'loss', 'write_lat', plan.loss.lat[0], plan.loss.lat[1], { arm, rule: { ...rule, everyN: plan.loss.latEveryN }, pathMtu, unsorted: true });
  }
  if (plan.kernel) {
    try {
      ensureTracefs();
      out.rdmaTracepoints = fs.readdirSync(`${TRACEFS}/events`).filter((d) => /^(rdma|ib_|rxe|iw)/.test(d));
    } catch {}
    const k = attachRoceKern();
    try {
      for (const kind of plan.kernel.kinds) {
        k.start();
        const r = await perftest(pair, kind, plan.kernel.iters, plan.kernel.size, { port: port++, extra: ['-t', '1', '-Q', '1'] });
        const ev = k.stop();
        const { clientOutput, serverOutput, ...rest } = r;
        out.phases.push({
          phase: 'kernel', arm: 'detached', run: { ...rest, clientTail: clientOutput.slice(-3000), serverTail: serverOutput.slice(-1500) },
          stages: { attached: k.attached, skipped: k.skipped, lost: k.lost(), events: ev.length, ops: attribute(ev) },
        });
        process.stderr.write(`rdma-ebpf guest: kernel ${kind} n=${plan.kernel.iters} exit ${r.clientExit}/${r.serverExit}, ${ev.length} stamps\n`);
      }
    } finally {
      k.close();
    }
  }
  if (plan.overhead) {
    const rng = createRng(plan.seed);
    const arms = plan.overhead.arms;
    // rounds of every arm once, each round in its own shuffled order
    const order = Array.from({ length: plan.overhead.blocks }, () => shuffle(arms, rng)).flat();
    let block = 0;
    const { kind, iters, size, events } = plan.overhead;
    for (const a of order) await once(pair, out, 'overhead', kind, iters, size, { arm: a, pathMtu, block: block++, unsorted: true, extra: events ? ['-e'] : [] });
  }
}

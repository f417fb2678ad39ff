// RDMA in eBPF: RoCEv2 per-QP telemetry and loss injection (bpf/roce.bpf.c, roce-loss.bpf.c) on
// the SoftRoCE traffic of a throwaway QEMU guest (harness/rdma/guest.ts, with its network: two rxe
// devices on one veth), which is where RDMA runs here: this host's kernel has no rxe. The host half boots the guest once with the guest half
// (rdma-ebpf-guest.ts) as its command, reads the JSON it leaves in the run folder and records:
//   proof     per perftest operation, what perftest posted against what the per-QP counters saw
//             (ops and payload bytes per direction): `proof ... (equal)` lines in the report;
//   loss      the loss program drops every Nth request to the server: dropped vs PSNs missing vs
//             NAKs (PSN sequence error) seen, the run's completion, bandwidth and latency against
//             a lossless run of the same size;
//   overhead  write latency with the programs attached vs detached, blocks interleaved.
// Numbers come from an emulated CPU (TCG): compare them only with each other.
import fs from 'node:fs';
import path from 'node:path';
import type { Experiment, FigureData } from '../experiment/context.js';
import { drawFigures } from '../figures/draw.js';
import { rdmaEbpfFigures } from '../figures/rdma-ebpf.js';
import { UsageError, positiveIntFlag } from '../experiment/args.js';
import { buildDir, repoRoot } from '../paths.js';
import { GuestError, guestUnavailable, runInGuest, type GuestRunResult } from '../rdma/guest.js';
import type { GuestPlan, GuestResult } from './rdma-ebpf-guest.js';
import { MODE, VARIANT, phaseRows } from './rdma-ebpf-rows.js';
import { rdmaEbpfReport } from './rdma-ebpf-report.js';

const GUEST_MAIN = path.join(buildDir, 'harness', 'experiments', 'rdma-ebpf-guest-main.js');

/** null when a guest can run the experiment here, else why not */
function unavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (the guest attaches eBPF programs and creates rxe devices as root)';
  const why = guestUnavailable();
  if (why) return why;
  if (!fs.existsSync(path.join(repoRoot, 'bpf', 'build', 'roce.bpf.o'))) return 'bpf/build/roce.bpf.o is not built (node bpf/build.mjs)';
  return null;
}

export function planFor(quick: boolean, o: { iters?: number; lossEvery?: number; blocks?: number; seed: number; xdpMode?: 'native' | 'generic' }): GuestPlan {
  const n = o.iters ?? (quick ? 200 : 2000);
  return {
    seed: o.seed,
    pathMtu: 1024,
    xdpMode: o.xdpMode ?? 'generic',
    proof: [['write_lat', n, 64], ['send_lat', n, 64], ['read_lat', Math.max(5, n >> 1), 64], ['write_bw', n, 4096]],
    loss: { everyN: o.lossEvery ?? 50, bw: [quick ? 1000 : 10000, 1024], lat: [n, 64], latEveryN: o.lossEvery ?? 50 },
    kernel: { iters: quick ? 200 : 2000, size: 64, kinds: ['write_bw', 'send_bw'] },
    overhead: { blocks: o.blocks ?? (quick ? 3 : 8), iters: quick ? 300 : 2000, size: 64, arms: ['detached', 'generic', 'generic-pass', 'native', 'native-pass'], kind: 'write_lat', events: false },
  };
}

function xdpModeFlag(v: string | boolean | undefined): 'native' | 'generic' | undefined {
  if (v === undefined || v === '') return undefined;
  if (v === 'native' || v === 'generic') return v;
  throw new UsageError(`--xdp-mode ${String(v)}: use generic or native`);
}

export const rdmaEbpf: Experiment = {
  name: 'rdma-ebpf',
  notebook: 'rdma-ebpf.ipynb',
  summary: 'RoCEv2 per-QP telemetry and loss injection in XDP on SoftRoCE traffic in a QEMU guest: counters against what perftest posted, PSN gaps/NAKs against injected drops, overhead attached vs detached',
  flags: {
    iters: { type: 'string', help: 'rdma-ebpf: perftest iterations per proof run (default 2000; quick 200)' },
    'loss-every': { type: 'string', help: 'rdma-ebpf: drop every Nth request packet to the server in the loss phase (default 50)' },
    blocks: { type: 'string', help: 'rdma-ebpf: overhead rounds; each round runs every arm (detached, telemetry and do-nothing program in generic and native XDP) once, shuffled (default 8; quick 3: a CI over block medians needs a few)' },
    'xdp-mode': { type: 'string', help: 'rdma-ebpf: XDP mode of the proof and loss phases: generic (default) or native' },
  },
  async run(ctx) {
    const why = unavailable();
    if (why) {
      ctx.skip(VARIANT, '*', MODE, why);
      return;
    }
    const a = ctx.args;
    const plan = planFor(a.quick, {
      iters: a.extra.iters ? positiveIntFlag(a, 'iters', 0) : undefined,
      lossEvery: a.extra['loss-every'] ? positiveIntFlag(a, 'loss-every', 0) : undefined,
      blocks: a.extra.blocks ? positiveIntFlag(a, 'blocks', 0) : undefined,
      seed: a.seed,
      xdpMode: xdpModeFlag(a.extra['xdp-mode']),
    });
    const dir = path.join(ctx.dir, 'guest');
    fs.mkdirSync(dir, { recursive: true });
    const planFile = path.join(dir, 'rdma-ebpf-plan.json');
    const resultFile = path.join(dir, 'rdma-ebpf-guest.json');
    fs.writeFileSync(planFile, JSON.stringify(plan, null, 2));
    const timeoutMs = a.quick ? 20 * 60_000 : 90 * 60_000;
    const ac = new AbortController();
    const stop = setInterval(() => ctx.interrupted && ac.abort(), 200);
    let g: GuestRunResult | null = null;
    let bootError = '';
    try {
      g = await runInGuest({ command: [process.execPath, GUEST_MAIN, '--plan', planFile, '--out', resultFile], outDir: dir, timeoutMs, signal: ac.signal });
    } catch (e) {
      bootError = e instanceof GuestError ? `${e.message} (console log ${e.consoleLogPath})` : (e as Error).message;
    } finally {
      clearInterval(stop);
    }
    const substrate = `guest-rxe-${g?.accel ?? 'unknown'}`;
    ctx.notes.push(`rdma-ebpf: SoftRoCE guest (${g ? `${g.accel}, kernel ${g.kernel}, booted in ${(g.bootMs / 1000).toFixed(1)} s, console log ${path.relative(ctx.dir, g.consoleLogPath)}` : bootError}); plan ${JSON.stringify(plan)}`);
    let result: GuestResult | null = null;
    try {
      result = JSON.parse(fs.readFileSync(resultFile, 'utf8')) as GuestResult;
    } catch {}
    if (!result) {
      ctx.fail({ variant: VARIANT, function: '*', mode: MODE, path: 'rdma', reason: `the guest left no results (${g ? `exit ${g.exitCode}: ${g.output.trim().split('\n').slice(-5).join(' | ')}` : bootError})` });
      return;
    }
    ctx.notes.push(...result.notes.map((n) => `rdma-ebpf: ${n}`));
    const attachments = result.phases.find((p) => p.attachments)?.attachments;
    if (attachments) ctx.notes.push(`rdma-ebpf: ${attachments.join('; ')}`);
    if (!result.pair) {
      ctx.fail({ variant: VARIANT, function: '*', mode: MODE, path: 'rdma', reason: `the guest half failed before it measured: ${result.error?.split('\n')[0] ?? 'no device pair'}` });
      return;
    }
    const addr = { client: result.pair.addrA, server: result.pair.addrB };
    for (const ph of result.phases) {
      if (ph.run.clientExit !== 0) ctx.fail({ variant: VARIANT, function: ph.run.kind, mode: MODE, path: 'rdma', params: `phase=${ph.phase}`, reason: `perftest client exit ${ph.run.clientExit}: ${ph.run.clientTail.trim().split('\n').slice(-3).join(' | ')}` });
      // a latency block without samples (perftest printed inf) would drop out of the overhead's CI unseen
      else if (ph.phase === 'overhead' && !ph.run.samplesUs.length) ctx.fail({ variant: VARIANT, function: ph.run.kind, mode: MODE, path: 'rdma', params: `phase=overhead;arm=${ph.arm};block=${ph.block ?? 0}`, reason: `the ${ph.arm} block ${ph.block ?? 0} brought no latency samples (perftest: ${ph.run.clientTail.trim().split('\n').slice(-2).join(' | ') || 'no output'})` });
      ctx.record(phaseRows(ph, addr, substrate));
    }
    if (result.error) ctx.fail({ variant: VARIANT, function: '*', mode: MODE, path: 'rdma', reason: `the guest half failed: ${result.error.split('\n')[0]}` });
    if (result.rdmaTracepoints) ctx.notes.push(`rdma-ebpf: RDMA tracepoint systems in the guest kernel: ${result.rdmaTracepoints.join(', ') || 'none'} (they do not fire for user-space verbs over rxe: the kernel phase uses kprobes on rxe)`);
    for (const ph of result.phases.filter((p) => p.stages)) {
      const st = ph.stages!;
      ctx.notes.push(`rdma-ebpf: kernel ${ph.run.kind}: ${st.attached.length} kprobes (${st.attached.join('; ')}), ${st.events} stamps, ${st.lost} lost, ${st.ops.length} complete operations`);
      for (const sk of st.skipped) ctx.skip(VARIANT, ph.run.kind, MODE, `kprobe stage ${sk.stage} (${sk.fn}) not attached: ${sk.reason}`);
    }
    ctx.notes.push('rdma-ebpf: not injected: delays (XDP cannot hold packets)');
  },
  async figures(data: FigureData, dir: string) {
    return drawFigures(rdmaEbpfFigures(data.summary), dir);
  },
  report(data, runDir) {
    return rdmaEbpfReport(data, runDir);
  },
};

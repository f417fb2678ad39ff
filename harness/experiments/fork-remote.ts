// The fork experiment's remote part: a parent agent and child agents, each in a network namespace of
// its own (node kind netns), joined by veths. Per state size, the parent snapshots a warm statefill
// instance; a child forks from it in each copy mode (the child's answer checked against the oracle
// before its time counts); then 1 … N children fork from the one parent at once, for forks per second.
import { spawnSync } from 'node:child_process';
import type { RunContext } from '../experiment/context.js';
import { FatalMeasurementError } from '../experiment/context.js';
import { AgentClient } from '../platform/agent-client.js';
import { launchNode } from '../platform/nodes/inventory.js';
import type { LaunchedNode } from '../platform/nodes/kind.js';
import type { RemoteCopy } from '../platform/remote-fork.js';
import { statefillAnswer } from '../functions/workloads/statefill.js';
import { LAZY_MAX_WINDOW, LAZY_WINDOW, lazyStatus } from '../variants/wasm/lazy-copy.js';
import { shuffle } from '../measure/random.js';
import { currentCpus, expandCpus, withAffinity } from '../experiment/affinity.js';

const V = 'wasm-fork';
export const REMOTE_VIAS = ['pull', 'push'] as const;
export type RemoteVia = (typeof REMOTE_VIAS)[number];
/** unmeasured rounds before the first size's forks count: the agents' first forks run code V8 has not compiled yet (in a run of 60 rounds, the first 10 were ~40% slower) */
const REMOTE_WARMUP = 20;
const MiB = 2 ** 20;

export interface RemoteForkPlan {
  sizes: number[];
  reps: number;
  warmup: number;
  copies: RemoteCopy[];
  /** how the pages travel: pull (the child reads them), push (the parent sends them beside the request) */
  vias: RemoteVia[];
  /** largest number of children for forks per second */
  children: number;
  /** seconds each forks-per-second point runs */
  fanoutSeconds: number;
  /** tc spec on every node's veth, or undefined */
  netem?: string;
}

/** Before anything is measured: a --netem spec this kernel cannot apply (netem refused and not a pure
 *  "rate X" for tbf), probed on the loopback of a throwaway network namespace (unshare -n); null if fine. */
export function shapingProblem(spec: string): string | null {
  const r = spawnSync('unshare', ['-n', 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', ...spec.trim().split(/\s+/)], { encoding: 'utf8' });
  if (r.status === 0 || /^rate \S+$/.test(spec.trim())) return null;
  return `--netem "${spec}": tc refused netem (${(r.error?.message ?? (r.stderr || r.stdout)).trim()}); without netem only "rate X" can be emulated (with tbf)`;
}

/** Applies `spec` to a node's eth0: netem when the kernel has it, else tbf for a pure "rate X". Returns
 *  the params it adds to every row, and a note saying which qdisc shaped the link and, for tbf, why not netem. */
export function shape(node: LaunchedNode, spec: string): { params: string; note: string } {
  const tc = (args: string[]) => spawnSync('ip', ['netns', 'exec', node.netns!, 'tc', 'qdisc', 'add', 'dev', 'eth0', 'root', ...args], { encoding: 'utf8' });
  const words = spec.trim().split(/\s+/);
  let r = tc(['netem', ...words]);
  if (r.status === 0) return { params: `netem=${spec.trim().replace(/\s+/g, '_')}`, note: `shaping: tc netem ${spec.trim()} on every node's eth0` };
  const netemErr = (r.stderr || r.stdout).trim();
  const rate = /^rate (\S+)$/.exec(spec.trim());
  if (!rate) throw new Error(`--netem "${spec}": tc refused netem (${netemErr}); without netem only "rate X" can be emulated (with tbf)`);
  const tbf = ['tbf', 'rate', rate[1]!, 'burst', '256kb', 'latency', '10s'];
  r = tc(tbf);
  if (r.status !== 0) throw new Error(`--netem "${spec}": neither netem (${netemErr}) nor tbf (${(r.stderr || r.stdout).trim()}) could be added`);
  return {
    params: `tbf=rate_${rate[1]}`,
    note: `shaping: --netem "${spec.trim()}" was applied as tc ${tbf.join(' ')} on every node's eth0, because tc refused netem here (${netemErr.replace(/\s+/g, ' ')}); tbf shapes the rate only (no delay, jitter or loss)`,
  };
}

/**
 * Nodes stand for machines, so each gets CPUs of its own where there are enough: the parent the
 * first CPU, the children the others in turn (with 2 CPUs, every child the second); the measuring
 * process, a client elsewhere, shares the parent's (it waits while the parent serves). With one CPU
 * nothing is pinned.
 */
export function placement(cpus: number[], children: number): { parent?: string; children: (string | undefined)[]; caller?: string } {
  if (cpus.length < 2) return { children: Array.from({ length: children }, () => undefined) };
  const rest = cpus.slice(1);
  return { parent: String(cpus[0]), children: Array.from({ length: children }, (_, i) => String(rest[i % rest.length])), caller: String(cpus[0]) };
}

export async function measureRemoteFork(ctx: RunContext, plan: RemoteForkPlan): Promise<void> {
  const place = placement(expandCpus(currentCpus()), plan.children);
  ctx.notes.push(
    place.parent
      ? `remote fork placement: parent agent on CPU ${place.parent}, child agents on CPU ${[...new Set(place.children)].join(',')}, the measuring process on CPU ${place.caller} (nodes stand for machines; a child sharing the parent's CPU would wait for it to finish sending)`
      : 'remote fork placement: one CPU, nothing pinned',
  );
  await withAffinity(place.caller, () => remoteForks(ctx, plan, place));
}

async function remoteForks(ctx: RunContext, plan: RemoteForkPlan, place: ReturnType<typeof placement>): Promise<void> {
  const maxMiB = Math.max(...plan.sizes);
  const memoryLimitMiB = maxMiB + 32;
  const nodes: LaunchedNode[] = [];
  const clients: AgentClient[] = [];
  try {
    const launch = async (name: string, cpus: string | undefined) => {
      const n = await launchNode({ name, kind: 'netns' }, { variants: [V], memoryLimitMiB, ...(cpus ? { cpus } : {}) });
      nodes.push(n);
      return n;
    };
    const parent = await launch('parent', place.parent);
    const children = [await launch('child1', place.children[0])];
    for (let i = 2; i <= plan.children; i++) children.push(await launch(`child${i}`, place.children[i - 1]));
    let shaping = '';
    if (plan.netem) {
      const notes = new Set<string>();
      for (const n of nodes) {
        const sh = shape(n, plan.netem);
        shaping = sh.params;
        notes.add(sh.note);
      }
      ctx.notes.push(...notes);
    }
    const connect = async (n: LaunchedNode) => {
      const c = await AgentClient.connect(n.endpoint);
      clients.push(c);
      return c;
    };
    const pc = await connect(parent);
    const cc = await Promise.all(children.map(connect));
    const childName = (await cc[0]!.hello()).node;
    let tag = 0;
    ctx.notes.push(`remote fork: parent and ${children.length} child agent(s) in network namespaces of their own on one bridge (veths), TCP links; children pull with streamed region reads (up to 4 MiB each, 16 in flight; eager and dirty ask for their pages with the header, prefetch for its working set) read by the kernel straight into the child instance's memory, every page checked against its fxh64 checksum as soon as it is whole there, before the child runs; a child keeps the last snapshot header it decoded and does not decode a byte-identical one again; copy modes interleaved in a seeded order per round; the first size's first ${REMOTE_WARMUP} rounds (at least) are unmeasured warm-up, as the agents' code is compiled while it runs${shaping ? `; shaping ${shaping}` : ''}`);
    if (plan.vias.includes('push')) {
      ctx.notes.push('remote fork via=push: the measuring process sends the child its fork-from (with a tag), then the parent a push-to naming the child and the tag; the parent sends the pieces the child would read (the header, then the pages) on the link the child opened to it, and the child takes them as its reads; the clock runs from the first send to the child\'s verified answer, as for a pull. Pulled and pushed forks of each copy mode are interleaved in one loop; lazy is pulled only');
    }
    for (const mib of plan.sizes) {
      if (ctx.interrupted) return;
      const input = Buffer.from(String(mib));
      const want = statefillAnswer(mib, 2);
      const d = await pc.snapshotRegister(V, 'statefill', input, 1);
      const base = { variant: 'wasm', function: 'statefill', mode: 'remote-fork', path: 'tcp' };
      const sp = (copy: string) => [`state_bytes=${mib * MiB}`, `copy=${copy}`, ...(shaping ? [shaping] : [])].join(';');
      ctx.record([{ ...base, metric: 'snapshot_time', params: sp('dirty'), iteration: 0, value: d.snapshotNs / 1000, unit: 'us' }]);
      ctx.notes.push(`remote fork ${mib} MiB: snapshot ${d.pages} dirty pages (${d.totalBytes} bytes with header), image ${d.imageBytes} bytes, working set ${d.workingSetPages} pages recorded by ${d.workingSetMethod} (${d.workingSetValidated ? 'checked on a local fork' : 'not confirmed: every dirty page'})`);
      // what recording the working set cost the parent (once per snapshot): the whole recording, and the call watched vs unwatched
      const wsp = `state_bytes=${mib * MiB};method=${d.workingSetMethod.split(' ')[0]}`;
      ctx.record([
        { ...base, metric: 'working_set_record_time', params: wsp, iteration: 0, value: d.workingSetNs / 1000, unit: 'us' },
        ...(d.workingSetWatchedCallNs !== undefined ? [{ ...base, metric: 'working_set_call_watched', params: wsp, iteration: 0, value: d.workingSetWatchedCallNs / 1000, unit: 'us' }] : []),
        ...(d.workingSetPlainCallNs !== undefined ? [{ ...base, metric: 'working_set_call_unwatched', params: wsp, iteration: 0, value: d.workingSetPlainCallNs / 1000, unit: 'us' }] : []),
        ...(d.workingSetProgramNs !== undefined ? [{ ...base, metric: 'working_set_program_time', params: wsp, iteration: 0, value: d.workingSetProgramNs / 1000, unit: 'us' }] : []),
      ]);
      const lazy = lazyStatus();
      if (!lazy.ok && plan.copies.includes('lazy')) ctx.skip('wasm', 'statefill', 'remote-fork', `copy=lazy: ${lazy.reason}`);
      if (lazy.ok && plan.copies.includes('lazy') && mib === Math.min(...plan.sizes)) {
        ctx.notes.push(`remote fork copy=lazy: the child reads the header, drops its memory's pages and registers them with userfaultfd; a worker thread with its own link to the parent fills ${LAZY_WINDOW} pages from each fault on, doubled up to ${LAZY_MAX_WINDOW} while the faults walk forward (snapshot pages read and checked, the others from the initial image or zeroes); the call runs as its pages arrive, so fork_latency is before any page and first_response includes the faults`);
      }
      // copy modes interleaved, a seeded order per round: a mode measured first would also pay the child
      // agent's warm-up (its first forks run cold code), and slow drift favours none of them
      const copies = plan.copies.filter((c) => c !== 'lazy' || lazy.ok);
      // lazy reads its pages as they fault: there is nothing to push beside the request but the header
      const ways = copies.flatMap((copy) => plan.vias.filter((via) => via === 'pull' || copy !== 'lazy').map((via) => ({ copy, via })));
      const reps = mib >= 512 ? Math.min(plan.reps, 3) : mib >= 128 ? Math.min(plan.reps, 8) : plan.reps;
      const warmup = mib === Math.min(...plan.sizes) ? Math.max(plan.warmup, REMOTE_WARMUP) : plan.warmup;
      for (let r = 0; r < warmup + reps; r++) {
        for (const { copy, via } of shuffle(ways, ctx.rng)) {
          const t0 = process.hrtime.bigint();
          let res;
          let e2e: number;
          if (via === 'push') {
            // the child first: the parent shares this process's CPU, and once woken would run (push) before this process sent the child its request
            const t = (tag = (tag % 0xffffffff) + 1);
            const forked = cc[0]!.forkFrom(parent.endpoint, d, copy, input, { tag: t }).then((r) => ((e2e = Number(process.hrtime.bigint() - t0)), r));
            const pushed = pc.pushTo(childName, d, copy, t);
            const [f, p] = await Promise.allSettled([forked, pushed]);
            if (f.status === 'rejected') throw f.reason;
            if (p.status === 'rejected') throw p.reason;
            res = f.value;
          } else {
            res = await cc[0]!.forkFrom(parent.endpoint, d, copy, input);
            e2e = Number(process.hrtime.bigint() - t0);
          }
          // off the clock: the child's RSS just after its answer, and a barrier, so the next fork does
          // not queue behind this one's clean-up (the child prepares its next target after answering)
          const rss = (await cc[0]!.hello()).memory.lastForkRssBytes;
          const got = Buffer.from(res.output).toString();
          if (got !== want) throw new FatalMeasurementError(`remote fork (${copy}, ${via}) of statefill ${mib} MiB answered ${JSON.stringify(got.slice(0, 80))}, want ${JSON.stringify(want)}`);
          if (r < warmup) continue;
          const it = r - warmup;
          const p = via === 'push' ? `${sp(copy)};via=push` : sp(copy);
          ctx.record([
            { ...base, metric: 'fork_latency', params: p, iteration: it, value: res.forkNs / 1000, unit: 'us' },
            { ...base, metric: 'first_response', params: p, iteration: it, value: e2e! / 1000, unit: 'us' },
            { ...base, metric: 'first_response_child', params: p, iteration: it, value: res.firstResponseNs / 1000, unit: 'us' },
            { ...base, metric: 'bytes_moved', params: p, iteration: it, value: res.bytesMoved, unit: 'bytes' },
            { ...base, metric: 'bytes_before_response', params: p, iteration: it, value: res.bytesBeforeResponse, unit: 'bytes' },
            { ...base, metric: 'child_memory', params: p, iteration: it, value: res.childMemoryBytes, unit: 'bytes' },
            ...(rss !== undefined ? [{ ...base, metric: 'child_rss', params: p, iteration: it, value: rss, unit: 'bytes' }] : []),
            // where the child's time went (header, target, pages, globals, run, ...), as the variant names the steps
            ...Object.entries(res.phasesNs ?? {}).map(([phase, ns]) => ({ ...base, metric: `child_${phase}`, params: p, iteration: it, value: ns / 1000, unit: 'us' })),
          ]);
        }
      }
      if (mib === Math.min(...plan.sizes)) await fanout(ctx, plan, parent.endpoint, d, cc, input, want, sp('dirty'));
    }
  } finally {
    for (const c of clients) c.close();
    await Promise.allSettled(nodes.map((n) => n.stop()));
  }
}

/** forks per second from one parent to k = 1 … N children, each child forking back to back for a fixed time */
async function fanout(ctx: RunContext, plan: RemoteForkPlan, peer: string, d: Parameters<AgentClient['forkFrom']>[1], cc: AgentClient[], input: Buffer, want: string, params: string): Promise<void> {
  for (let k = 1; k <= cc.length; k++) {
    if (ctx.interrupted) return;
    const until = Date.now() + plan.fanoutSeconds * 1000;
    const t0 = process.hrtime.bigint();
    const counts = await Promise.all(
      cc.slice(0, k).map(async (c) => {
        let n = 0;
        while (Date.now() < until) {
          const got = Buffer.from((await c.forkFrom(peer, d, 'dirty', input)).output).toString();
          if (got !== want) throw new FatalMeasurementError(`fan-out fork answered ${JSON.stringify(got.slice(0, 80))}, want ${JSON.stringify(want)}`);
          n++;
        }
        return n;
      }),
    );
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const total = counts.reduce((a, b) => a + b, 0);
    ctx.record([{ variant: 'wasm', function: 'statefill', mode: 'remote-fork', path: 'tcp', metric: 'forks_per_second', params: `${params};children=${k}`, iteration: 0, value: total / s, unit: 'forks/s' }]);
  }
}

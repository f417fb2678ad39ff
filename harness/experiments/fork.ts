// Fork: how fast a new instance with a warm instance's state answers, against the state's size. The
// instance is the test-only statefill fixture (N MiB of state, its input). Methods: local fork (this
// process; eager, dirty, dirty onto a prefaulted instance), remote fork between namespace nodes over
// TCP (fork-remote.ts), and the baselines cold (compile + instantiate + the first call that builds the
// state), warm (the cached instance's next call) and CRIU (where `criu check` passes). Each answer is
// checked against statefill's oracle before its time counts.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import type { Experiment, FigureData, RunContext } from '../experiment/context.js';
import { FatalMeasurementError } from '../experiment/context.js';
import { positiveInts } from '../experiment/args.js';
import { statefillAnswer } from '../functions/workloads/statefill.js';
import { REMOTE_COPY_MODES, type RemoteCopy } from '../platform/remote-fork.js';
import { netnsAvailable } from '../platform/nodes/fabric.js';
import { compile, instantiate, run, type WasmCode } from '../variants/wasm/engine.js';
import { InstancePool } from '../variants/wasm/instance-pool.js';
import { fork, instantiateParent, prepareImage, restoreInto, takeSnapshot } from '../variants/wasm/snapshot.js';
import { CowImage } from '../variants/wasm/cow-image.js';
import { loadBytes } from '../variants/wasm/engine.js';
import { REMOTE_VIAS, measureRemoteFork, shapingProblem, type RemoteVia } from './fork-remote.js';
import { forkFigures } from '../figures/fork.js';
import { drawFigures } from '../figures/draw.js';
import { forkReport } from './fork-report.js';
import { containerBaselines } from './fork-container.js';

const MiB = 2 ** 20;
const now = () => process.hrtime.bigint();
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

export const fork_: Experiment = {
  name: 'fork',
  summary: 'fork latency and time to the first verified response against instance state size: local fork, remote fork between namespace nodes over TCP, cold and warm baselines; forks per second from one parent to 1…N children; bytes moved; the child\'s memory',
  notebook: 'fork.ipynb',
  flags: {
    sizes: { type: 'string', help: 'fork: state sizes in MiB (default quick 1,16; full 1,16,128,1024)' },
    children: { type: 'string', help: 'fork: child nodes for forks per second, 1…N (default quick 2; full 4)' },
    copies: { type: 'string', help: `fork: remote copy modes (default eager,dirty,prefetch,lazy; of ${REMOTE_COPY_MODES.join(', ')})` },
    via: { type: 'string', help: `fork: how a remote fork's pages travel (default pull,push; of ${REMOTE_VIAS.join(', ')}): pull = the child reads them from the parent, push = the parent sends them beside the request` },
    netem: { type: 'string', help: 'fork: tc shaping on every node\'s veth, e.g. "delay 100us rate 10gbit" (netem; where the kernel has no netem, only "rate X", with tbf); recorded in params' },
  },
  async run(ctx) {
    const { args } = ctx;
    const sizes = positiveInts(args, 'sizes', args.quick ? [1, 16] : [1, 16, 128, 1024]);
    const [children] = positiveInts(args, 'children', [args.quick ? 2 : 4]);
    const copies = String(args.extra.copies ?? 'eager,dirty,prefetch,lazy').split(',') as RemoteCopy[];
    for (const c of copies) if (!REMOTE_COPY_MODES.includes(c)) throw new Error(`--copies: "${c}" is not one of ${REMOTE_COPY_MODES.join(', ')}`);
    const vias = String(args.extra.via ?? 'pull,push').split(',') as RemoteVia[];
    for (const v of vias) if (!REMOTE_VIAS.includes(v)) throw new Error(`--via: "${v}" is not one of ${REMOTE_VIAS.join(', ')}`);
    const netem = args.extra.netem as string | undefined;
    const netemProblem = netem === undefined ? null : shapingProblem(netem);
    if (netemProblem) throw new Error(netemProblem);
    const freeMiB = Math.floor(Number(/MemAvailable:\s+(\d+)/.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1024);
    const fits = sizes.filter((s) => s * 7 + 256 < freeMiB);
    for (const s of sizes.filter((x) => !fits.includes(x))) ctx.skip('wasm', 'statefill', '*', `state_bytes=${s * MiB}: needs about ${s * 7 + 256} MiB (parent, image, its memfd copy, child, pooled spare, copies in flight), ${freeMiB} MiB available`);
    const reps = ctx.reps(15, 60);
    const warmup = ctx.warmup(2, 5);
    localForks(ctx, fits, reps, warmup);
    criu(ctx);
    await containerBaselines(ctx, fits, reps, warmup);
    const ns = netnsAvailable();
    if (!ns.ok) ctx.skip('wasm', 'statefill', 'remote-fork', ns.reason);
    else if (fits.length) await measureRemoteFork(ctx, { sizes: fits, reps, warmup, copies, vias, children: children!, fanoutSeconds: args.quick ? 1 : 3, netem });
  },
  async figures(data: FigureData, dir: string) {
    return drawFigures(forkFigures(data.summary), dir);
  },
  report(data) {
    return forkReport(data.summary);
  },
};

function localForks(ctx: RunContext, sizes: number[], reps0: number, warmup: number): void {
  const fn = ctx.catalog.get('statefill');
  const code: WasmCode = { name: fn.name, path: fn.wasm!.path, abi: fn.wasm!.abi };
  ctx.notes.push('local fork, cold and warm run in the measuring process (V8), one after the other; a child is collected before the next fork is timed');
  ctx.notes.push('local fork copy=cow: the snapshot\'s memory image is written once into a memfd and each fork maps it copy-on-write over a fresh instance\'s memory (mmap MAP_PRIVATE|MAP_FIXED), so the fork copies nothing and the kernel copies each page the first call writes: fork_latency leaves that out, first_response includes it; no bytes_moved row');
  for (const mib of sizes) {
    if (ctx.interrupted) return;
    const reps = mib >= 512 ? Math.min(reps0, 3) : mib >= 128 ? Math.min(reps0, 8) : reps0;
    const maxPages = Math.ceil((mib + 8) * 16);
    const input = Buffer.from(String(mib));
    const want2 = statefillAnswer(mib, 2);
    const sp = `state_bytes=${mib * MiB}`;
    const check = (got: Uint8Array, want: string, what: string) => {
      const s = Buffer.from(got).toString();
      if (s !== want) throw new FatalMeasurementError(`${what} of statefill ${mib} MiB answered ${JSON.stringify(s.slice(0, 80))}, want ${JSON.stringify(want)}`);
    };
    const img = prepareImage(code, maxPages);
    const parent = instantiateParent(img);
    run(code, parent, input, maxPages);
    const snap = takeSnapshot(img, parent, 1);
    const local = { variant: 'wasm', function: 'statefill', mode: 'local-fork', path: 'local' };
    // dirty onto a prefaulted instance, and copy-on-write onto a fresh one: each from a pool filled before the fork
    let cow: CowImage | null = null;
    try {
      cow = CowImage.create(img, snap);
    } catch (e) {
      ctx.skip('wasm', 'statefill', 'local-fork', `${sp};copy=cow: ${(e as Error).message}`);
    }
    try {
      for (const [copy, pooled] of [['eager', null], ['dirty', null], ['dirty', 'prefaulted'], ['cow', 'fresh']] as const) {
        if (copy === 'cow' && !cow) continue;
        const pool = pooled ? new InstancePool(img, snap, 1, pooled === 'prefaulted') : null;
        const p = `${sp};copy=${copy}${pooled ? `;pool=${pooled}` : ''}`;
        for (let r = 0; r < warmup + reps; r++) {
          gc();
          if (pool) pool.fill();
          const a = now();
          const child = copy === 'cow' ? cow!.forkInto(img, pool!.take()!) : pool ? restoreInto(img, snap, copy, pool.take()!) : fork(img, snap, copy);
          const b = now();
          const out = run(code, child, input, maxPages);
          const c = now();
          check(out, want2, `local fork (${copy})`);
          if (r >= warmup) {
            ctx.record([
              { ...local, metric: 'fork_latency', params: p, iteration: r - warmup, value: Number(b - a) / 1000, unit: 'us' },
              { ...local, metric: 'first_response', params: p, iteration: r - warmup, value: Number(c - a) / 1000, unit: 'us' },
              // cow copies no byte at the fork, the kernel copies each page the call writes: not counted here
              ...(copy === 'cow' ? [] : [{ ...local, metric: 'bytes_moved', params: p, iteration: r - warmup, value: copy === 'eager' ? snap.memoryBytes : snap.data.length, unit: 'bytes' }]),
              { ...local, metric: 'child_memory', params: p, iteration: r - warmup, value: child.memory.buffer.byteLength, unit: 'bytes' },
            ]);
          }
        }
        pool?.clear();
      }
    } finally {
      cow?.close();
    }
    // cold: new bytes compiled, instantiated, initialised, and the first call builds the state
    const bytes = loadBytes(code, maxPages);
    const want1 = statefillAnswer(mib, 1);
    const cold = { variant: 'wasm', function: 'statefill', mode: 'cold', path: 'local' };
    for (let r = 0; r < warmup + reps; r++) {
      gc();
      const a = now();
      const live = instantiate(code, compile(code, Uint8Array.from(bytes)), maxPages);
      const b = now();
      const out = run(code, live, input, maxPages);
      const c = now();
      check(out, want1, 'cold start');
      if (r >= warmup) {
        ctx.record([
          { ...cold, metric: 'fork_latency', params: `${sp};copy=none`, iteration: r - warmup, value: Number(b - a) / 1000, unit: 'us' },
          { ...cold, metric: 'first_response', params: `${sp};copy=none`, iteration: r - warmup, value: Number(c - a) / 1000, unit: 'us' },
        ]);
      }
    }
    // warm: the parent's own next calls
    const warm = { variant: 'wasm', function: 'statefill', mode: 'warm', path: 'local' };
    for (let r = 0; r < warmup + reps; r++) {
      const a = now();
      const out = run(code, parent, input, maxPages);
      const b = now();
      check(out, statefillAnswer(mib, r + 2), 'warm call');
      if (r >= warmup) ctx.record([{ ...warm, metric: 'first_response', params: `${sp};copy=none`, iteration: r - warmup, value: Number(b - a) / 1000, unit: 'us' }]);
    }
  }
}

/** CRIU checkpoint/restore: recorded unavailable, with CRIU's own reason, where `criu check` fails. */
export function criuStatus(): { ok: true } | { ok: false; reason: string } {
  const r = spawnSync('criu', ['check'], { encoding: 'utf8', timeout: 30_000 });
  if (r.error) return { ok: false, reason: `criu is not installed (Debian package criu): ${r.error.message}` };
  if (r.status !== 0) return { ok: false, reason: `criu check failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}` };
  return { ok: true };
}

function criu(ctx: RunContext): void {
  const s = criuStatus();
  ctx.skip('container', 'statefill', 'criu', s.ok ? 'criu check passes, but checkpoint/restore of the container is not measured by fork.mjs yet' : s.reason);
}

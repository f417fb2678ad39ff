// The rdma experiment: invocations and remote forks over RDMA against TCP on the same substrate, and the
// verbs micro-benchmarks against perftest. Where RDMA is: the devices of this machine (with
// FXH_GATEWAY_ADDR/FXH_NODE_ADDR naming two interfaces that carry it), else the SoftRoCE guest, which
// the experiment boots once and runs its guest half in (rdma-guest-main.ts); the rows come back
// through the results folder. Numbers from the guest's emulated CPU compare only with each other.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Experiment, RunContext } from '../experiment/context.js';
import { positiveIntFlag, positiveInts } from '../experiment/args.js';
import { rdmaDevices } from '../experiment/in-guest.js';
import { buildDir } from '../paths.js';
import { GuestError, guestUnavailable, runInGuest } from '../rdma/guest.js';
import type { RawRow } from '../results/schema.js';
import { drawFigures } from '../figures/draw.js';
import { rdmaFigures } from '../figures/rdma.js';

const guestMain = path.join(buildDir, 'harness', 'experiments', 'rdma-guest-main.js');

type GuestLine = Omit<RawRow, 'experiment' | 'run'> | { fail: { phase: string; path: string; reason: string } };

export const rdma: Experiment = {
  name: 'rdma',
  summary: 'RDMA against TCP on one substrate: invocation round trips and throughput by payload size, remote fork by one-sided reads; the verbs against perftest',
  notebook: 'rdma.ipynb',
  flags: {
    payloads: { type: 'string', help: 'rdma: payload sizes in bytes (default 64,4096,65536; quick 64,4096); in the suite shared with chains' },
    'fork-reps': { type: 'string', help: 'rdma: measured remote forks per copy mode and transport (default 20; quick 8)' },
  },
  async run(ctx) {
    const { args } = ctx;
    const sizes = positiveInts(args, 'payloads', args.quick ? [64, 4096] : [64, 4096, 65536]);
    const flags = ['--transports', 'tcp,rdma', '--sizes', sizes.join(','), '--reps', String(ctx.reps(50, 500)), '--fork-reps', String(positiveIntFlag(args, 'fork-reps', args.quick ? 8 : 20)), '--duration-ms', args.quick ? '500' : '2000', '--timeout-ms', String(args.timeoutMs)];
    const rowsFile = path.join(ctx.dir, 'rdma-rows.jsonl');
    const where = rdmaDevices().length && process.env.FXH_GATEWAY_ADDR && process.env.FXH_NODE_ADDR ? 'here' : 'guest';
    if (where === 'here') {
      await runHere([guestMain, '--out', rowsFile, ...flags], ctx);
    } else {
      const why = guestUnavailable();
      if (why) return ctx.skip('*', '*', '*', `no RDMA device here${rdmaDevices().length ? ' with FXH_GATEWAY_ADDR and FXH_NODE_ADDR set' : ''}, and no SoftRoCE guest can boot: ${why}`);
      const ac = new AbortController();
      const stop = setInterval(() => ctx.interrupted && ac.abort(), 200);
      try {
        const cmd = 'export FXH_GATEWAY_ADDR="$FXH_GUEST_ADDR_B" FXH_NODE_ADDR="$FXH_GUEST_ADDR_A"; exec "$@"';
        const r = await runInGuest({ command: ['sh', '-c', cmd, 'sh', process.execPath, guestMain, '--out', rowsFile, ...flags], outDir: ctx.dir, timeoutMs: 45 * 60_000, signal: ac.signal });
        ctx.notes.push(`rdma: ran in a SoftRoCE guest (${r.accel}: ${r.accelReason}; kernel ${r.kernel}), booted in ${(r.bootMs / 1000).toFixed(1)} s; its console log is guest/console.log`);
        if (r.exitCode !== 0) ctx.fail({ variant: '*', function: '*', mode: '*', path: 'guest', reason: `the guest half exited with ${r.exitCode}: ${r.output.slice(-600)}` });
      } catch (e) {
        if (ctx.interrupted) return;
        ctx.fail({ variant: '*', function: '*', mode: '*', path: 'guest', reason: e instanceof GuestError ? e.message : String(e) });
      } finally {
        clearInterval(stop);
      }
    }
    ingest(ctx, rowsFile);
  },
  async figures(data, dir) {
    return drawFigures(rdmaFigures(data.summary), dir);
  },
};

function ingest(ctx: RunContext, file: string): void {
  if (!fs.existsSync(file)) return;
  const rows: Omit<RawRow, 'experiment'>[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let o: GuestLine;
    try {
      o = JSON.parse(line) as GuestLine;
    } catch {
      // a guest stopped mid-write leaves a cut last line: the rows before it stand
      ctx.notes.push(`rdma: a cut line in ${path.basename(file)} was left out: ${line.slice(0, 80)}`);
      continue;
    }
    if ('fail' in o) ctx.fail({ variant: '*', function: '*', mode: o.fail.phase, path: o.fail.path, reason: o.fail.reason });
    else rows.push(o as Omit<RawRow, 'experiment'>);
  }
  ctx.record(rows);
}

function runHere(argv: string[], ctx: RunContext): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'inherit', 'inherit'] });
    const stop = setInterval(() => ctx.interrupted && child.kill('SIGINT'), 200);
    child.on('close', (code) => {
      clearInterval(stop);
      if (code !== 0 && !ctx.interrupted) ctx.fail({ variant: '*', function: '*', mode: '*', path: 'here', reason: `the rdma half exited with ${code}` });
      resolve();
    });
  });
}

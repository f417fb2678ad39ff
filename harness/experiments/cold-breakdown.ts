// Cold-start breakdown: where a cold start's time goes, explained by eBPF tracing (bpf/coldtrace.bpf.c).
//
// Per variant × function × cold mode: N traced cold starts (syscalls by name, page faults, processes,
// threads, execs, mounts, bytes read; phase timestamps from arrival to the function's first
// instruction and on to the output) and N untraced ones, interleaved in a seeded random order, so
// the tracing's own cost (traced − untraced median) is measured under the same conditions.
//
// Traced: the programs are attached and a session traces this process (scope "self": in-process
// variants run here) and every process it forks during the call (scope "tree": native's fork/exec,
// `runc run` and everything it forks). Untraced: the programs are detached (not just idle).
// Attaching and detaching happen outside the timed region. Only the direct path (the variant called
// in this process) is traced.
//
// Without root or eBPF the traced half is skipped with the reason; the untraced cold starts still run.
import fs from 'node:fs';
import path from 'node:path';
import type { Experiment, FigureData, RunContext } from '../experiment/context.js';
import { FatalMeasurementError } from '../experiment/context.js';
import { withAffinity } from '../experiment/affinity.js';
import { verifyOutput } from '../functions/verify.js';
import { InvokeError, type Mode } from '../platform/variant.js';
import type { RawRow } from '../results/schema.js';
import { progress } from '../measure/progress.js';
import { shuffle } from '../measure/random.js';
import { ColdTracer, breakdown, coldTraceCapability, type CollectResult, type Counts, type Scope } from '../bpf/coldtrace.js';
import { breakdownCells, breakdownFigures, breakdownTableText, overheadLines } from '../figures/breakdown.js';
import { drawFigures } from '../figures/draw.js';
import type { Cell } from '../experiment/latency.js';
import { CellInterrupted, measureDirectCell } from '../experiment/direct-cell.js';

export const DEFAULT_FUNCTIONS = ['noop', 'sha256'];
const MODES: readonly Mode[] = ['cold-compile', 'cold'];


type Row = Omit<RawRow, 'experiment'>;

export const coldBreakdown: Experiment = {
  name: 'cold-breakdown',
  summary:
    'cold starts of every variant traced with eBPF (syscalls, page faults, processes, threads, execs, mounts, bytes read, phases to the first instruction), interleaved with untraced ones to measure the tracing overhead',
  notebook: 'cold-breakdown.ipynb',
  async run(ctx) {
    const fns = ctx.args.functions ? ctx.functions : DEFAULT_FUNCTIONS.flatMap((n) => (ctx.functions.some((f) => f.name === n) ? [ctx.catalog.get(n)] : []));
    const cells: Cell[] = ctx.cells(MODES, fns).map((c) => ({ ...c, input: c.fn.workload.input(ctx.args.seed, ctx.args.scale), failed: false }));
    const cap = coldTraceCapability();
    let tracer: ColdTracer | undefined;
    let why = cap.ok ? '' : cap.reason;
    if (cap.ok) {
      ctx.notes.push(...cap.notes.map((n) => `cold-breakdown: ${n}`));
      try {
        tracer = ColdTracer.open();
        ctx.notes.push(...tracer.notes.map((n) => `cold-breakdown: ${n}`));
      } catch (e) {
        why = `the tracing programs do not load: ${(e as Error).message.split('\n').slice(0, 6).join(' | ')}`;
      }
    }
    if (!tracer) {
      ctx.notes.push(`cold-breakdown: eBPF tracing skipped (${why}); untraced cold starts only`);
      for (const c of cells) ctx.skip(c.variant.name, c.fn.name, c.mode, `traced metrics skipped: ${why}`);
      process.stderr.write(`cold-breakdown: eBPF tracing unavailable: ${why}\n`);
    }
    try {
      await provenToFinish(ctx, cells);
      const cpus = ctx.clientCpus();
      await withAffinity(cpus, () => measure(ctx, cells, tracer, `scale=${ctx.args.scale};client_cpus=${cpus ?? 'any'}`));
    } finally {
      tracer?.close();
    }
  },
  async figures(data: FigureData, dir: string) {
    return drawFigures(breakdownFigures(breakdownCells(data.raw), data.summary), dir);
  },
  report(data: FigureData, runDir: string) {
    const cells = breakdownCells(data.raw);
    const text = breakdownTableText(cells);
    fs.writeFileSync(path.join(runDir, 'cold-breakdown.txt'), text, { flag: 'wx' });
    const lines = overheadLines(cells);
    fs.writeFileSync(path.join(runDir, 'cold-breakdown-overhead.txt'), lines.join('\n') + '\n', { flag: 'wx' });
    return [...lines, `breakdown table: ${path.join(runDir, 'cold-breakdown.txt')}`];
  },
};

async function measure(ctx: RunContext, cells: Cell[], tracer: ColdTracer | undefined, params: string): Promise<void> {
  const reps = ctx.reps(10, 50);
  const warmup = ctx.warmup(2, 5);
  const perCall = tracer ? 2 : 1;
  const bar = progress({ label: 'cold-breakdown', total: (reps + warmup) * cells.length * perCall });
  const timeoutMs = ctx.args.timeoutMs;

  const fail = (c: Cell, e: unknown) => {
    if (e instanceof FatalMeasurementError) throw e;
    if (ctx.interrupted) return;
    c.failed = true;
    const kind = e instanceof InvokeError ? `${e.kind}: ` : '';
    ctx.fail({ variant: c.variant.name, function: c.fn.name, mode: c.mode, path: 'direct', metric: 'cold_start_traced', params, unit: 'us', reason: `${kind}${(e as Error).message}` });
  };
  const verified = (c: Cell, output: Uint8Array) => {
    try {
      verifyOutput(c.fn, c.input, output);
    } catch (e) {
      throw new FatalMeasurementError(`wrong output from ${c.variant.name}/${c.mode}: ${(e as Error).message}`);
    }
  };

  // Each round: every cell once traced and once untraced, in two blocks whose order is drawn at
  // random. The programs are attached/detached between blocks (not per call) and the run pauses
  // SETTLE_MS after each switch: a detach leaves deferred kernel work (RCU) that would otherwise
  // land in the next timed call and make the untraced side look slower.
  const blocks: ('traced' | 'untraced')[] = tracer ? ['traced', 'untraced'] : ['untraced'];
  for (let round = 0; round < warmup + reps; round++) {
    const rows: Row[] = [];
    const it = round - warmup;
    for (const how of shuffle(blocks, ctx.rng)) {
      if (ctx.interrupted) return;
      if (tracer && how === 'traced' && !tracer.attached) {
        tracer.attach();
        await settle();
      } else if (tracer && how === 'untraced' && tracer.attached) {
        tracer.detach();
        await settle();
      }
      for (const c of shuffle(cells.filter((x) => !x.failed), ctx.rng)) {
        await yieldToSignals();
        if (ctx.interrupted) return;
        try {
          if (how === 'untraced') {
            const t0 = process.hrtime.bigint();
            const r = await c.variant.invoke(c.fn, c.mode, c.input, { timeoutMs });
            const ns = Number(process.hrtime.bigint() - t0);
            verified(c, r.output);
            if (it >= 0) rows.push(row(c, params, 'cold_start_untraced', it, ns / 1000, 'us'));
          } else {
            // the programs' kernel time is read outside the timed span (arrival .. output)
            const p0 = tracer!.programTime();
            const s = tracer!.session();
            let out: Uint8Array;
            s.mark('arrival');
            try {
              out = (await c.variant.invoke(c.fn, c.mode, c.input, { timeoutMs, onPhase: (n) => s.mark(n) })).output;
              s.mark('output');
            } finally {
              s.end();
            }
            const p1 = tracer!.programTime();
            const res = s.collect();
            verified(c, out);
            if (it >= 0) {
              rows.push(...tracedRows(c, params, it, res));
              if (p0 && p1) rows.push(row(c, params, 'trace_prog_time', it, (p1.ns - p0.ns) / 1000, 'us'), row(c, params, 'trace_prog_runs', it, p1.runs - p0.runs, 'count'));
            }
          }
        } catch (e) {
          fail(c, e);
        }
        bar.tick();
      }
    }
    ctx.record(rows);
  }
  tracer?.detach();
  bar.done();
}

/**
 * Traced calls run in this process (the tracer follows it), so a function that runs in the
 * caller's thread (WASM) could hold it for good. Each such cell first makes one call in a worker
 * thread that is terminated after --timeout-ms: only a function that finished there is traced here.
 */
async function provenToFinish(ctx: RunContext, cells: Cell[]): Promise<void> {
  for (const c of cells) {
    if (c.variant.enforcesTimeouts || ctx.interrupted) continue;
    try {
      await measureDirectCell({
        variant: c.variant, options: ctx.variants.options.get(c.variant.name)!, fn: c.fn, mode: c.mode, input: c.input,
        warmup: 0, reps: 1, timeoutMs: ctx.args.timeoutMs, stopped: () => ctx.interrupted,
      });
    } catch (e) {
      if (e instanceof CellInterrupted) return;
      if (e instanceof FatalMeasurementError) throw e;
      c.failed = true;
      const kind = e instanceof InvokeError ? `${e.kind}: ` : '';
      ctx.fail({ variant: c.variant.name, function: c.fn.name, mode: c.mode, path: 'direct', metric: 'cold_start_traced', unit: 'us', reason: `${kind}${(e as Error).message} (trial call in a worker thread, before tracing)` });
    }
  }
}

/** lets a pending Ctrl-C run its handler between calls (awaiting a synchronous invoke does not) */
const yieldToSignals = () => new Promise<void>((r) => setImmediate(r));

const SETTLE_MS = 50;
const settle = () => new Promise<void>((r) => setTimeout(r, SETTLE_MS));

type CellId = { variant: { name: string }; fn: { name: string }; mode: string };

function row(c: CellId, params: string, metric: string, iteration: number, value: number, unit: string): Row {
  return { variant: c.variant.name, function: c.fn.name, mode: c.mode, path: 'direct', metric, params, iteration, value, unit };
}

/** Raw rows of one traced cold start: timings (µs) and, per scope, the counts. */
export function tracedRows(cell: CellId, params: string, it: number, res: CollectResult): Row[] {
  const b = breakdown(res);
  const out: Row[] = [];
  if (b.totalNs !== undefined) out.push(row(cell, params, 'cold_start_traced', it, b.totalNs / 1000, 'us'));
  if (b.firstInstructionNs !== undefined) out.push(row(cell, params, 'first_instruction', it, b.firstInstructionNs / 1000, 'us'));
  const seen = new Map<string, number>();
  for (const p of b.phases) seen.set(p.name, (seen.get(p.name) ?? 0) + p.ns);
  for (const [name, ns] of seen) out.push(row(cell, params, `phase:${name}`, it, ns / 1000, 'us'));
  for (const scope of ['self', 'tree'] as Scope[]) {
    const k: Counts = res.byScope[scope];
    const sp = `${params};scope=${scope}`;
    const add = (metric: string, v: number | null, unit: string) => {
      if (v !== null) out.push(row(cell, sp, metric, it, v, unit));
    };
    add('syscalls_total', k.syscallsTotal, 'count');
    add('page_faults', k.pageFaults, 'count');
    add('processes', k.processes, 'count');
    add('threads', k.threads, 'count');
    add('execs', k.execs, 'count');
    add('mounts', k.mounts, 'count');
    add('bytes_read', k.bytesRead, 'B');
    // every syscall seen (a syscall absent from a sample was called 0 times in it)
    for (const [name, n] of Object.entries(k.syscalls)) add(`syscall:${name}`, n, 'count');
  }
  return out;
}

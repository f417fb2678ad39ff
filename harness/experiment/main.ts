// Runs one experiment or a suite of them into one new results folder.
// Order of business: flags -> plan -> measure (raw.csv grows as it goes) -> summary -> figures -> notebooks.
import fs from 'node:fs';
import path from 'node:path';
import { loadCatalog } from '../functions/catalog.js';
import { repoRoot, resultsRoot } from '../paths.js';
import { fileURLToPath } from 'node:url';
import { createRng } from '../measure/random.js';
import { createRunDir, type RunDir } from '../results/run-dir.js';
import { openRawWriter, readRawCsv } from '../results/raw-writer.js';
import { summarize, writeSummaryCsv } from '../results/summarize.js';
import { collectEnv, writeEnvJson } from '../results/env.js';
import { declaredModes } from '../platform/modes.js';
import { UsageError, helpText, parseCommonArgs, scriptArgs, type CommonArgs, type FlagSpec } from './args.js';
import type { Catalog } from '../functions/catalog.js';
import type { FunctionEntry } from '../functions/types.js';
import { RunContext, FatalMeasurementError, type Experiment } from './context.js';
import { renewVariants, resolveFunctions, resolveVariants, runSeed, type VariantSet } from './plan.js';
import { executeNotebooks } from './notebooks.js';
import { cleanupStaleScratch } from '../platform/scratch.js';
import { sweepStaleNetworks } from '../platform/nodes/fabric.js';
import { inventoryRecord } from '../platform/nodes/inventory.js';
import { killProcessesNaming } from '../platform/proc-sweep.js';
import { runNotes } from '../platform/run-notes.js';
import { guestUnavailable } from '../rdma/guest.js';
import { needsGuest, runInGuestAndExit } from './in-guest.js';

export interface SuiteOptions {
  /** names the results folder and the help text */
  name: string;
  summary: string;
  experiments: Experiment[];
  /** the entry script's import.meta.url: flags are what follows it on the command line */
  scriptUrl: string;
  /** --runs when not given, in full (not --quick) mode; default 1 */
  fullRuns?: number;
  /** --variants when not given (default: every variant); an experiment that calls the engine itself
   *  names only what it needs, so no daemon or runtime is started for nothing */
  defaultVariants?: string[];
}

// inside the SoftRoCE guest the folder is a staging one the host moves into the real one, which the host names last
const resultsLabel = process.env.FXH_GUEST ? 'results (inside the guest, staged for the host)' : 'results';

export async function runSuite(o: SuiteOptions): Promise<never> {
  const own: Record<string, FlagSpec> = Object.assign({}, ...o.experiments.map((e) => e.flags ?? {}));
  let args: CommonArgs;
  try {
    args = parseCommonArgs(scriptArgs(process.argv, o.scriptUrl), own);
  } catch (e) {
    return usage(e, o.name);
  }
  if (args.help) {
    process.stdout.write(helpText(`zx experiments/${o.name}.mjs`, o.summary, own));
    process.exit(0);
  }
  // RDMA asked for and none here: into the SoftRoCE guest, or on without it, saying why
  const guestWhy = needsGuest(args);
  let rdmaSkipped: string | null = null;
  if (guestWhy) {
    const unavailable = guestUnavailable();
    if (!unavailable) return runInGuestAndExit({ name: o.name, scriptUrl: o.scriptUrl, notebooks: o.experiments.flatMap((e) => (e.notebook ? [e.notebook] : [])) }, args, guestWhy);
    rdmaSkipped = `the gateway-rdma path: ${guestWhy}, and no SoftRoCE guest can boot here (${unavailable})`;
    args.transports = args.transports.filter((t) => t !== 'rdma');
    process.stderr.write(`skipping ${rdmaSkipped}\n`);
  }
  let catalog: Catalog, functions: FunctionEntry[], variants: VariantSet;
  try {
    catalog = await loadCatalog();
    functions = resolveFunctions(catalog, args.functions);
    variants = await resolveVariants(args.variants ?? o.defaultVariants, 256);
  } catch (e) {
    return usage(e, o.name);
  }

  if (args.runs === undefined && !args.quick && o.fullRuns) args.runs = o.fullRuns;
  let run: RunDir;
  try {
    run = createRunDir({ resultsRoot, experiment: o.name, out: args.out });
  } catch (e) {
    await Promise.allSettled([...variants.active.values()].map((v) => v.teardown()));
    fs.rmSync(variants.workDir, { recursive: true, force: true });
    return usage(e, o.name);
  }
  // written per batch (a killed run keeps every row), synced at the end: see RawWriterOptions.sync
  const writer = openRawWriter(path.join(run.dir, 'raw.csv'), { sync: false });
  const ctx = new RunContext(args, run.dir, catalog, functions, variants, writer, createRng(runSeed(args.seed, 1)));
  if (rdmaSkipped) for (const e of o.experiments) ctx.skips.push({ experiment: e.name, variant: '*', function: '*', mode: '*', reason: rdmaSkipped });
  // inside the SoftRoCE guest the host's /tmp shows through (read-only, overlaid) with the host's live
  // processes' folders, whose pids the guest cannot see: the host sweeps its own
  for (const line of process.env.FXH_GUEST ? [] : [...cleanupStaleScratch(), ...sweepStaleNetworks()]) {
    ctx.notes.push(`start-up cleanup: ${line}`);
    process.stderr.write(`start-up cleanup: ${line}\n`);
  }
  // the command as a user would type it again: the entry script (relative to the repo) and its flags
  const envBase = { argv: [path.relative(repoRoot, fileURLToPath(o.scriptUrl)), ...args.argv], seed: args.seed, quick: args.quick, runs: ctx.runs };
  // the inventory (--nodes) as given: node names, kinds and their fields
  const nodesRecord = args.nodes ? { nodes: inventoryRecord(args.nodes) } : {};
  writeEnvJson(run.dir, collectEnv({ ...envBase, skips: [], extra: args.nodes ? nodesRecord : undefined }));
  process.stderr.write(`${resultsLabel}: ${run.dir}\n`);
  for (const u of variants.unavailable) process.stderr.write(`skipping variant ${u.variant}: ${u.reason}\n`);

  let finishing: Promise<void> | null = null;
  const finish = (state: { interrupted?: string; error?: Error }) => {
    finishing ??= (async () => {
      // gateways (their executors tear their variants down) and this process's variants at once:
      // a daemon variant's daemon stops when the last of them lets it go
      await Promise.allSettled([ctx.stopGateways(), ...[...variants.active.values()].map((v) => v.teardown())]);
      // what a terminated worker thread started (a cold-process child) names the run's scratch folder
      killProcessesNaming(variants.workDir);
      fs.rmSync(variants.workDir, { recursive: true, force: true });
      writer.close();
      for (const m of runNotes()) if (!ctx.notes.includes(m)) ctx.notes.push(m);
      const raw = readRawCsv(writer.path);
      const summary = summarize(raw, ctx.skips, ctx.failures);
      writeSummaryCsv(path.join(run.dir, 'summary.csv'), summary);
      writeEnvJson(run.dir, collectEnv({ ...envBase, skips: ctx.skips, extra: { ...nodesRecord, failures: ctx.failures, notes: ctx.notes, state, modes: declaredModes() } }), { update: true });
      if (state.interrupted || state.error) return;
      const figDir = path.join(run.dir, 'figures');
      fs.mkdirSync(figDir, { recursive: true });
      for (const e of o.experiments) {
        if (!e.figures) continue;
        const mine = (r: { experiment: string }) => r.experiment === e.name;
        const made = await e.figures({ summary: summary.filter(mine), raw: raw.filter(mine), skips: ctx.skips.filter(mine) }, figDir);
        for (const f of made) process.stderr.write(`figure: ${path.relative(run.dir, f)}\n`);
      }
      for (const e of o.experiments) {
        if (!e.report) continue;
        const mine = (r: { experiment: string }) => r.experiment === e.name;
        for (const line of e.report({ summary: summary.filter(mine), raw: raw.filter(mine), skips: ctx.skips.filter(mine) }, run.dir, args)) ctx.report.push(line);
      }
    })();
    return finishing;
  };

  // `on`, not `once`: the libbpf exit hook re-raises a signal nobody else listens to, which
  // would kill this process before finish() has written the summary.
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) {
      process.stderr.write(`\n${sig} again: leaving now; the rows so far are in ${run.dir}\n`);
      run.markIncomplete(`interrupted by ${sig} (twice: no summary)`);
      process.exit(130);
    }
    process.stderr.write(`\n${sig}: stopping; what was measured so far stays in ${run.dir} (again to leave at once)\n`);
    ctx.interrupted = true;
    void finish({ interrupted: sig }).finally(() => {
      run.markIncomplete(`interrupted by ${sig}`);
      process.exit(130);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    for (let r = 1; r <= ctx.runs; r++) {
      if (r > 1) {
        // a new repetition: new processes and instances, its own seeded order
        await ctx.endRun();
        await renewVariants(variants);
        ctx.run = r;
        ctx.rng = createRng(runSeed(args.seed, r));
      }
      for (const e of o.experiments) {
        ctx.experiment = e.name;
        process.stderr.write(`== ${e.name}${ctx.runs > 1 ? ` (run ${r} of ${ctx.runs})` : ''}: ${e.summary}\n`);
        await e.run(ctx);
        if (ctx.interrupted) await new Promise(() => {}); // the signal handler ends the process
      }
    }
  } catch (err) {
    const e = err as Error;
    await finish({ error: e });
    run.markIncomplete(`${e.name}: ${e.message}`);
    const wrongOutput = e instanceof FatalMeasurementError;
    const stack = wrongOutput ? '' : `${e.stack ?? ''}\n`;
    process.stderr.write(`\n${wrongOutput ? 'RUN FAILED (wrong output)' : 'RUN FAILED'}: ${e.message}\n${stack}results so far: ${run.dir}\n`);
    process.exit(1);
  }
  await finish({});
  if (ctx.failures.length) {
    run.markIncomplete(`${ctx.failures.length} cell(s) failed; see summary.csv (status=failed)`);
    process.stderr.write(`\n${ctx.failures.length} cell(s) FAILED (listed above and in summary.csv)\nresults: ${run.dir}\n`);
    process.exit(1);
  }
  run.markComplete();
  // Notebooks read a finished folder: they run after it is marked complete.
  if (args.notebooks) {
    const nb = await executeNotebooks(o.experiments.flatMap((e) => (e.notebook ? [e.notebook] : [])), run.dir);
    for (const f of nb.written) process.stderr.write(`notebook: ${path.relative(run.dir, f)}\n`);
    if (nb.problems.length) {
      ctx.notes.push(...nb.problems);
      writeEnvJson(run.dir, collectEnv({ ...envBase, skips: ctx.skips, extra: { ...nodesRecord, failures: ctx.failures, notes: ctx.notes, state: {}, modes: declaredModes() } }), { update: true });
    }
  }
  for (const n of ctx.notes) process.stderr.write(`note: ${n}\n`);
  if (ctx.report.length) process.stdout.write(ctx.report.join('\n') + '\n');
  process.stdout.write(`${resultsLabel}: ${run.dir}\n`);
  process.exit(0);
}

function usage(e: unknown, name: string): never {
  if (e instanceof UsageError || (e instanceof Error && /unknown|valid|exists/i.test(e.message))) {
    process.stderr.write(`${name}: ${(e as Error).message}\n(try --help)\n`);
    process.exit(2);
  }
  throw e;
}

// Everything an experiment needs while it runs: where to record, what to run, how to skip and fail.
import os from 'node:os';
import type { Catalog } from '../functions/catalog.js';
import type { FunctionEntry } from '../functions/types.js';
import type { Mode, Variant } from '../platform/variant.js';
import type { RawRow, Skip } from '../results/schema.js';
import type { RawWriter } from '../results/raw-writer.js';
import type { Failure } from '../results/summarize.js';
import type { Rng } from '../measure/random.js';
import type { CommonArgs, FlagSpec } from './args.js';
import type { VariantSet } from './plan.js';
import { startGateway, type GatewayHandle, type GatewayLaunch } from './gateway-process.js';

export interface Experiment {
  name: string;
  summary: string;
  /** the experiment's own flags */
  flags?: Record<string, FlagSpec>;
  run(ctx: RunContext): Promise<void>;
  /** draws this experiment's figures from the run folder's data into `dir`; never measures */
  figures?(data: FigureData, dir: string): Promise<string[]>;
  /** derived tables written next to summary.csv; the lines returned are printed at the end */
  report?(data: FigureData, runDir: string, args: CommonArgs): string[];
  /** notebook in notebooks/ that rebuilds this experiment's tables and figures */
  notebook?: string;
}

export interface FigureData {
  summary: import('../results/schema.js').SummaryRow[];
  raw: RawRow[];
  skips: Skip[];
}

/** Thrown when a measured output is wrong: the run stops at once. */
export class FatalMeasurementError extends Error {
  override name = 'FatalMeasurementError';
}

// Read once, before anything pins this process (after which it would see a single CPU).
const CPUS_AT_START = os.availableParallelism();

export function defaultGatewayCpus(): string | undefined {
  return CPUS_AT_START > 1 ? String(CPUS_AT_START - 1) : undefined;
}

export class RunContext {
  experiment = '';
  readonly skips: Skip[] = [];
  readonly failures: Failure[] = [];
  readonly notes: string[] = [];
  /** lines of derived results printed when the run ends */
  readonly report: string[] = [];
  /** started or starting: a Ctrl-C during a start must still stop it */
  private readonly gateways: Promise<GatewayHandle>[] = [];
  interrupted = false;
  /** which of the --runs independent repetitions is measuring, from 1 */
  run = 1;

  constructor(
    readonly args: CommonArgs,
    readonly dir: string,
    readonly catalog: Catalog,
    readonly functions: FunctionEntry[],
    readonly variants: VariantSet,
    readonly writer: RawWriter,
    public rng: Rng,
  ) {}

  record(rows: Omit<RawRow, 'experiment'>[]): void {
    this.writer.append(rows.map((r) => ({ experiment: this.experiment, ...r, run: this.run })));
  }

  skip(variant: string, fn: string, mode: string, reason: string): void {
    const s = { experiment: this.experiment, variant, function: fn, mode, reason };
    // every run plans the same cells: a skip is recorded once
    if (!this.skips.some((x) => JSON.stringify(x) === JSON.stringify(s))) this.skips.push(s);
  }

  fail(f: Omit<Failure, 'experiment'>): void {
    if (this.runs > 1) f = { ...f, reason: `run ${this.run}: ${f.reason}` };
    this.failures.push({ experiment: this.experiment, ...f });
    process.stderr.write(`FAILED ${f.variant}/${f.function}/${f.mode}${f.path ? '/' + f.path : ''}: ${f.reason}\n`);
  }

  /**
   * The (variant, function, mode) cells this experiment will run, given the modes it wants.
   * Everything else that was asked for is recorded as skipped, with the reason.
   */
  cells(wanted: readonly Mode[], functions: readonly FunctionEntry[] = this.functions): { variant: Variant; fn: FunctionEntry; mode: Mode }[] {
    const mine = (name: string) => this.variants.experiments.get(name)?.includes(this.experiment) ?? true;
    for (const u of this.variants.unavailable) if (mine(u.variant)) this.skip(u.variant, '*', '*', u.reason);
    const out: { variant: Variant; fn: FunctionEntry; mode: Mode }[] = [];
    for (const variant of this.variants.active.values()) {
      if (!mine(variant.name)) continue;
      for (const mode of wanted) {
        if (!variant.modes.includes(mode)) continue;
        for (const fn of functions) {
          const why = variant.supports(fn, mode);
          if (why) this.skip(variant.name, fn.name, mode, why);
          else out.push({ variant, fn, mode });
        }
      }
    }
    return out;
  }

  /**
   * A gateway process of this run's own; stopped when the run ends (also on Ctrl-C).
   * It and its executors are pinned to the last CPU, so the measuring process has the others:
   * unpinned, three busy processes on two vCPUs bounce between cores and add wake-up latency.
   */
  async gateway(opts: Partial<GatewayLaunch> = {}): Promise<GatewayHandle> {
    const cpus = opts.cpus ?? this.gatewayCpus();
    // after Ctrl-C the cleanup has run: a gateway started now would outlive it
    if (this.interrupted || this.gatewaysClosed) throw new Error('the run is stopping: no new gateway');
    const starting = startGateway({ memoryLimitMiB: 256, ...opts, cpus });
    this.gateways.push(starting);
    const g = await starting;
    const note = `gateway and executors pinned to CPU(s) ${cpus ?? 'none (single CPU)'}`;
    if (!this.notes.includes(note)) this.notes.push(note);
    return g;
  }

  /** CPUs of the gateway and its executors */
  gatewayCpus(): string | undefined {
    return this.args.gatewayCpus ?? defaultGatewayCpus();
  }

  /** CPUs of the measuring process in latency experiments: by default the gateway's */
  clientCpus(): string | undefined {
    const c = this.args.clientCpus ?? this.gatewayCpus();
    return c === 'none' ? undefined : c;
  }

  /** pause before each cross-process call, so it starts on a quiet CPU */
  settleMs(): number {
    return this.args.settleMs ?? 0;
  }

  /** recorded calls per visit of a cell in interleaved rounds (each visit adds one unrecorded call first) */
  blockSize(): number {
    return this.args.block ?? 5;
  }

  reps(quick: number, full: number): number {
    return this.args.reps ?? (this.args.quick ? quick : full);
  }

  warmup(quick: number, full: number): number {
    return this.args.warmup ?? (this.args.quick ? quick : full);
  }

  private gatewaysClosed = false;

  /** --runs, 1 unless given */
  get runs(): number {
    return this.args.runs ?? 1;
  }

  /** Between two runs: this run's gateways stop, so the next run starts its own processes. */
  async endRun(): Promise<void> {
    await Promise.allSettled(this.gateways.splice(0).map(async (g) => (await g).stop()));
  }

  async stopGateways(): Promise<void> {
    this.gatewaysClosed = true;
    await Promise.allSettled(this.gateways.splice(0).map(async (g) => (await g).stop()));
  }
}

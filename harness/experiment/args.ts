// Command-line flags common to every experiment, plus each experiment's own.
import { parseArgs } from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseInventory } from '../platform/nodes/inventory.js';
import type { NodeSpec } from '../platform/nodes/kind.js';

export interface FlagSpec {
  type: 'string' | 'boolean';
  help: string;
}

export const COMMON_FLAGS = {
  quick: { type: 'boolean', help: 'few repetitions and small sweeps: minutes, not tens of minutes' },
  out: { type: 'string', help: 'results folder to create (must not exist); default results/<time>-<experiment>-<id>' },
  functions: { type: 'string', help: 'comma-separated function names (default: all built-in functions)' },
  variants: { type: 'string', help: 'comma-separated variant names (default: all)' },
  reps: { type: 'string', help: 'measured repetitions per cell (overrides the experiment default)' },
  warmup: { type: 'string', help: 'unmeasured repetitions per cell before measuring' },
  seed: { type: 'string', help: 'seed of the interleaving order and of generated inputs (default 1)' },
  scale: { type: 'string', help: 'input size: small or large (default small)' },
  'timeout-ms': { type: 'string', help: 'per-invocation timeout (default 10000)' },
  'gateway-cpus': { type: 'string', help: 'CPUs the gateway and its executors are pinned to (taskset list; default: the last CPU when there are several)' },
  'client-cpus': { type: 'string', help: 'CPUs the measuring process runs on in latency experiments (default: the gateway\'s CPUs; "none" leaves it unpinned)' },
  'settle-ms': { type: 'string', help: 'pause before each call through the gateway in latency experiments, so the previous call\'s teardown does not land on it (default 0)' },
  runs: { type: 'string', help: 'independent repetitions of the whole run, each with its own processes and seeded order; the median CIs are then over the run medians (default 1; the full suite 3)' },
  block: { type: 'string', help: 'recorded calls per visit of a cell in the interleaved gateway rounds; each visit starts with one unrecorded call (default 5)' },
  nodes: { type: 'string', help: 'the node inventory: a JSON file, or inline JSON: [{"name":"n1","kind":"local|netns|ssh",...}] (README, "Nodes"); recorded in env.json' },
  'no-notebooks': { type: 'boolean', help: 'do not execute the notebooks into the results folder' },
  transport: { type: 'string', help: 'the links of the gateway path (client -> gateway -> executor), comma-separated: unix (default), tcp, rdma; each is its own path (gateway, gateway-tcp, gateway-rdma). rdma with no RDMA device here runs the whole experiment inside a SoftRoCE guest (README, "RDMA")' },
  help: { type: 'boolean', help: 'print this help' },
} as const satisfies Record<string, FlagSpec>;

export interface CommonArgs {
  quick: boolean;
  out?: string;
  functions?: string[];
  variants?: string[];
  reps?: number;
  warmup?: number;
  seed: number;
  scale: 'small' | 'large';
  timeoutMs: number;
  notebooks: boolean;
  gatewayCpus?: string;
  clientCpus?: string;
  settleMs?: number;
  block?: number;
  /** --runs as given (the default depends on the entry point) */
  runs?: number;
  /** --nodes: the inventory, checked */
  nodes?: NodeSpec[];
  /** --transport: link schemes of the gateway path, in order */
  transports: string[];
  help: boolean;
  /** the experiment's own flags, raw */
  extra: Record<string, string | boolean | undefined>;
  argv: string[];
}

/** An experiment's own flag holding comma-separated positive integers (e.g. --sizes 64,1024), or `dflt`. */
export function positiveInts(args: Pick<CommonArgs, 'extra'>, flag: string, dflt: number[]): number[] {
  const spec = args.extra[flag];
  if (typeof spec !== 'string' || !spec) return dflt;
  const xs = spec.split(',').map(Number);
  if (xs.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`--${flag} wants positive integers, got "${spec}"`);
  return xs;
}

/** An experiment's own flag holding one positive integer (e.g. --duration-ms 5000), or `dflt`. */
export function positiveIntFlag(args: Pick<CommonArgs, 'extra'>, flag: string, dflt: number): number {
  const spec = args.extra[flag];
  return typeof spec === 'string' && spec ? positiveInt(flag, spec)! : dflt;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

/** The arguments after the entry script, whether it was run by zx or by node. */
export function scriptArgs(argv: string[], scriptUrl: string): string[] {
  const script = fileURLToPath(scriptUrl);
  const i = argv.findIndex((a) => path.resolve(a) === script);
  return i < 0 ? argv.slice(2) : argv.slice(i + 1);
}

function positiveInt(name: string, v: string | undefined, allowZero = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) throw new UsageError(`--${name} wants a ${allowZero ? 'non-negative' : 'positive'} integer, got "${v}"`);
  return n;
}

const list = (v: string | undefined) => (v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter(Boolean));

export function parseCommonArgs(args: string[], own: Record<string, FlagSpec> = {}): CommonArgs {
  const options = Object.fromEntries(Object.entries({ ...COMMON_FLAGS, ...own }).map(([k, v]) => [k, { type: v.type }]));
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }) as { values: Record<string, string | boolean | undefined> });
  } catch (e) {
    const valid = Object.keys({ ...COMMON_FLAGS, ...own }).map((k) => `--${k}`).join(', ');
    throw new UsageError(`${(e as Error).message}\nvalid flags: ${valid}`);
  }
  const scale = (values.scale as string | undefined) ?? 'small';
  if (scale !== 'small' && scale !== 'large') throw new UsageError(`--scale is small or large, got "${scale}"`);
  const extra: Record<string, string | boolean | undefined> = {};
  for (const k of Object.keys(own)) extra[k] = values[k];
  let nodes: NodeSpec[] | undefined;
  try {
    nodes = values.nodes === undefined ? undefined : parseInventory(values.nodes as string);
  } catch (e) {
    throw new UsageError(`--nodes: ${(e as Error).message}`);
  }
  return {
    quick: Boolean(values.quick),
    out: values.out as string | undefined,
    functions: list(values.functions as string | undefined),
    variants: list(values.variants as string | undefined),
    reps: positiveInt('reps', values.reps as string | undefined),
    warmup: positiveInt('warmup', values.warmup as string | undefined, true),
    seed: positiveInt('seed', values.seed as string | undefined, true) ?? 1,
    scale,
    timeoutMs: positiveInt('timeout-ms', values['timeout-ms'] as string | undefined) ?? 10_000,
    notebooks: !values['no-notebooks'],
    gatewayCpus: values['gateway-cpus'] as string | undefined,
    clientCpus: values['client-cpus'] as string | undefined,
    settleMs: positiveInt('settle-ms', values['settle-ms'] as string | undefined, true),
    block: positiveInt('block', values.block as string | undefined),
    runs: positiveInt('runs', values.runs as string | undefined),
    nodes,
    transports: parseTransports(values.transport as string | undefined),
    help: Boolean(values.help),
    extra,
    argv: args,
  };
}

const TRANSPORTS = ['unix', 'tcp', 'rdma'];

function parseTransports(v: string | undefined): string[] {
  const ts = list(v) ?? ['unix'];
  const bad = ts.filter((t) => !TRANSPORTS.includes(t));
  if (bad.length || !ts.length) throw new UsageError(`--transport takes ${TRANSPORTS.join(', ')} (comma-separated), not "${v}"`);
  return [...new Set(ts)];
}

export function helpText(title: string, summary: string, own: Record<string, FlagSpec> = {}): string {
  const rows = Object.entries({ ...COMMON_FLAGS, ...own }).map(([k, v]) => `  --${k}${v.type === 'string' ? ' <value>' : ''}`.padEnd(28) + v.help);
  return `${title}\n\n${summary}\n\nflags:\n${rows.join('\n')}\n`;
}

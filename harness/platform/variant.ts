// The plug-in interface every platform variant implements. The harness core only knows this file.
import type { FunctionEntry } from '../functions/types.js';
import type { ModeDecl } from './modes.js';

export type { ModeDecl } from './modes.js';

/** A mode's id (cold, warm, ...): each variant declares its own (VariantPlugin.modes, platform/modes.ts). */
export type Mode = string;

export type Capability = { ok: true } | { ok: false; reason: string };

export interface InvokeOptions {
  /** the invocation is abandoned (and its instance destroyed) after this long */
  timeoutMs: number;
  /** Optional (used by the cold-start tracer, harness/bpf/coldtrace.ts): called at named points of an
   *  in-process invocation, e.g. 'compile_start', 'compile_done', 'instantiate_start',
   *  'instantiate_done' (the function's first instruction follows), 'run_done'. Variants that run
   *  the function in another process need not call it: the tracer sees their processes in the kernel. */
  onPhase?: (name: string) => void;
}

export interface Invocation {
  /** owned by the caller: the executor writes a large one to its socket without copying, so a variant must not reuse its memory */
  output: Uint8Array;
  /** ns spent inside the variant, from the call to the output being ready */
  elapsedNs: number;
}

/** Where the processes holding idle instances must run (the density experiment's memory cgroup). */
export interface IdlePlacement {
  /** `command args` rewritten so the process is inside from its first instruction; every process that
   *  holds instances starts through it (what it forks, and containers its runtime makes, are born inside) */
  wrap(command: string, args: readonly string[]): { command: string; args: string[] };
}

export interface IdleOptions {
  placement: IdlePlacement;
  /** bound on each step (starting a holder process, starting one instance with its first call); what overran is killed */
  timeoutMs: number;
}

/** What a side costs, reported by the variant itself: for instances the caller cannot place in its cell
 *  (containers a daemon starts are not the caller's children, and their daemon and shims are shared). */
export interface IdleMemory {
  /** the side's whole memory, its shared holder once plus every instance (what a cell's usage would be) */
  bytes: number;
  /** the kernel's part of `bytes`, where the kernel says */
  kernelBytes?: number;
  /** PSS/RSS summed over the side's processes */
  pssBytes: number;
  rssBytes: number;
  processes: number;
  /** the part of `bytes` every instance shares (a daemon): reported apart as well */
  shared: { bytes: number; label: string };
  /** how it was read */
  method: string;
}

/** Idle, ready instances of one function, started one at a time; the caller measures them (see Variant.startIdle). */
export interface IdleInstances {
  /** what holds the instances and what they share, for the run's notes */
  readonly method: string;
  /** starts one more instance and returns its answer to `input` (the caller checks it); rejects with the reason */
  add(input: Uint8Array): Promise<Uint8Array>;
  /** how many of the instances started are alive now (the OOM killer may have taken some) */
  alive(): Promise<number>;
  /** Present when the side's processes are not all in the placement (a daemon's containers): the caller reads
   *  this instead of the cell, and checks a budget against it (no kernel limit then binds the side). */
  memory?(): Promise<IdleMemory>;
  /** memory the kernel holds for the instances outside any process (eBPF: memlock of programs and maps) */
  kernelMemory?(): { bytes: number; method: string };
  /** stops everything it started; safe to call twice */
  close(): Promise<void>;
}

export interface Variant {
  readonly name: string;
  readonly modes: readonly Mode[];
  /** true when invoke() itself stops an overrunning function; false means it runs in the caller's
   *  thread and only the caller (the gateway, by restarting the executor) can stop it. */
  readonly enforcesTimeouts?: boolean;
  /** Whether this variant can run on this machine at all; the reason is recorded in the results when not. */
  check(): Promise<Capability>;
  /** null when `fn` can run in `mode`, else the reason it cannot (e.g. no native build). */
  supports(fn: FunctionEntry, mode: Mode): string | null;
  /** Runs `fn` once. Rejects with InvokeError on a function failure or timeout. */
  invoke(fn: FunctionEntry, mode: Mode, input: Uint8Array, opts: InvokeOptions): Promise<Invocation>;
  /** Idle instances of `fn` in processes started through `opts.placement` (never in the caller's process, unless they are kernel objects). */
  startIdle?(fn: FunctionEntry, opts: IdleOptions): Promise<IdleInstances>;
  /** In an executor process asked to hold idle instances (agent-main --idle-control): one more instance of
   *  `fn` kept alive in this process, after answering `input` (returned). */
  holdIdle?(fn: FunctionEntry, input: Uint8Array): Promise<Uint8Array>;
  /** Releases every instance, process, container and file the variant made. Safe to call twice. */
  teardown(): Promise<void>;
}

export interface VariantOptions {
  /** scratch directory owned by this variant instance */
  workDir: string;
  /** wasm: memory limit per instance in MiB */
  memoryLimitMiB: number;
}

/** How the gateway reaches a variant's executor process. */
export interface ExecutorReach {
  /** the transport between the gateway and the executor: a unix socket (default) or TCP on 127.0.0.1 */
  transport?: 'unix' | 'tcp';
}

/** What a file in harness/variants/ default-exports. */
export interface VariantPlugin {
  name: string;
  summary: string;
  /** the modes its variants offer, declared here (id, label, legend rank, colour); their ids are Variant.modes */
  modes: readonly ModeDecl[];
  create(opts: VariantOptions): Variant;
  /** how its executor is reached (default: a unix socket) */
  executor?: ExecutorReach;
  /** the experiments this variant takes part in; absent: all of them. Elsewhere it is not in the plan at all. */
  experiments?: readonly string[];
}

export type InvokeErrorKind = 'function-error' | 'timeout' | 'memory-limit' | 'invalid-module' | 'unavailable' | 'bad-request';

export class InvokeError extends Error {
  constructor(readonly kind: InvokeErrorKind, message: string) {
    super(message);
    this.name = 'InvokeError';
  }
}

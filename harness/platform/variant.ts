// The plug-in interface every platform variant implements. The harness core only knows this file.
import type { FunctionEntry } from '../functions/types.js';

/** cold-compile: compile + instantiate; cold: new instance from a cached artifact; cold-process: a new process
 *  compiles, instantiates and runs (WASM's counterpart of one `runc run`); warm: reuse a live instance;
 *  local-fork: a new instance forked, in this process, from a snapshot of a warm parent (variants/wasm-fork.ts). */
export type Mode = 'cold-compile' | 'cold' | 'cold-process' | 'warm' | 'local-fork';
// The wire protocol sends a mode as its index here: append, never reorder.
export const MODES: readonly Mode[] = ['cold-compile', 'cold', 'warm', 'cold-process', 'local-fork'];

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

/** Memory of one idle, ready-to-serve instance. */
export interface InstanceMemory {
  rssBytes: number;
  pssBytes: number;
  /** how the number was obtained, e.g. "PSS of container init + runc, /proc/<pid>/smaps_rollup" */
  method: string;
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
  /** Starts `count` idle warm instances of `fn` and reports the memory of each; they are torn down before it resolves. */
  measureIdle?(fn: FunctionEntry, count: number): Promise<InstanceMemory[]>;
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

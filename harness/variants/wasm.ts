// Variant "wasm": functions run in V8's WebAssembly engine in this process, with an in-memory WASI host.
// It gives no isolation by itself: it is meant to run inside an executor process, whose
// gateway kills and restarts it when a function overruns its timeout. Mode cold-process is the
// exception: a new process per call (wasm/process-main.ts), killed on timeout like a container.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FunctionEntry } from '../functions/types.js';
import { InvokeError, type Capability, type IdleInstances, type IdleOptions, type Invocation, type InvokeOptions, type Mode, type Variant, type VariantOptions, type VariantPlugin } from '../platform/variant.js';
import { startIdleExecutor } from '../platform/idle-executor.js';
import { WASM_PAGE, withNonce } from './wasm/module-edit.js';
import { compile, instantiate, loadBytes, run, type Live, type WasmCode } from './wasm/engine.js';
import { runOnce } from './native.js';
import { COLD, WARM } from './common-modes.js';
import type { ModeDecl } from '../platform/modes.js';

/** compile + instantiate + call, new bytes each time (V8's module cache cannot answer) */
const COLD_COMPILE: ModeDecl = { id: 'cold-compile', label: 'cold-compile', rank: 1 };
/** a new Node process compiles, instantiates and calls: WASM's counterpart of one `runc run` */
const COLD_PROCESS: ModeDecl = { id: 'cold-process', label: 'cold-process', rank: 0 };
export const WASM_MODES: readonly ModeDecl[] = [COLD_COMPILE, COLD, COLD_PROCESS, WARM];

const PROCESS_MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'wasm', 'process-main.js');

class WasmVariant implements Variant {
  readonly name = 'wasm';
  readonly modes: readonly Mode[] = WASM_MODES.map((m) => m.id);
  private readonly bytes = new Map<string, Uint8Array>();
  private readonly modules = new Map<string, WebAssembly.Module>();
  private readonly warm = new Map<string, Live>();
  /** per function, its capped module written to a file for cold-process children */
  private readonly files = new Map<string, string>();
  private readonly children = new Set<ChildProcess>();
  private nonce = 0;
  private readonly maxPages: number;
  /** idle instances this process holds (holdIdle) */
  private readonly held: Live[] = [];
  private readonly workDir: string;

  constructor(opts: VariantOptions) {
    this.maxPages = Math.floor((opts.memoryLimitMiB * 2 ** 20) / WASM_PAGE);
    this.workDir = opts.workDir;
  }

  async check(): Promise<Capability> {
    return typeof WebAssembly === 'object' ? { ok: true } : { ok: false, reason: 'this Node has no WebAssembly' };
  }

  supports(fn: FunctionEntry, mode: Mode): string | null {
    if (!fn.wasm) return `${fn.name} has no WebAssembly build`;
    if (mode === 'warm' && fn.wasm.abi === 'command') {
      return `${fn.name} is a WASI command module (_start runs once per instance); warm reuse needs a reactor exporting fx_invoke`;
    }
    return null;
  }

  private code(fn: FunctionEntry): WasmCode {
    return { name: fn.name, path: fn.wasm!.path, abi: fn.wasm!.abi };
  }

  private moduleBytes(fn: FunctionEntry): Uint8Array {
    let b = this.bytes.get(fn.name);
    if (!b) {
      b = loadBytes(this.code(fn), this.maxPages);
      this.bytes.set(fn.name, b);
    }
    return b;
  }

  private compile(fn: FunctionEntry, bytes: Uint8Array): WebAssembly.Module {
    return compile(this.code(fn), bytes);
  }

  private cachedModule(fn: FunctionEntry): WebAssembly.Module {
    let m = this.modules.get(fn.name);
    if (!m) {
      m = this.compile(fn, this.moduleBytes(fn));
      this.modules.set(fn.name, m);
    }
    return m;
  }

  private instantiate(fn: FunctionEntry, module: WebAssembly.Module): Live {
    return instantiate(this.code(fn), module, this.maxPages);
  }

  private run(fn: FunctionEntry, live: Live, input: Uint8Array): Uint8Array {
    return run(this.code(fn), live, input, this.maxPages);
  }

  /** cold-process: a new process compiles, instantiates and runs the function once (process-main.ts) */
  private async inNewProcess(fn: FunctionEntry, input: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    let file = this.files.get(fn.name);
    if (!file) {
      file = path.join(this.workDir, `${fn.name}.capped.wasm`);
      fs.writeFileSync(file, this.moduleBytes(fn));
      this.files.set(fn.name, file);
    }
    try {
      const r = await runOnce(process.execPath, [PROCESS_MAIN, file, fn.name, fn.wasm!.abi, String(this.maxPages)], process.env, input, timeoutMs, { label: `${fn.name} (wasm, new process)`, track: this.children });
      return r.output;
    } catch (e) {
      // the child names the kind of failure first on its stderr
      const m = e instanceof InvokeError && e.kind === 'function-error' ? /stderr: (function-error|memory-limit|invalid-module): ([^]*)$/.exec(e.message) : null;
      if (m) throw new InvokeError(m[1] as InvokeError['kind'], m[2]!.trim());
      throw e;
    }
  }

  async invoke(fn: FunctionEntry, mode: Mode, input: Uint8Array, opts?: InvokeOptions): Promise<Invocation> {
    const why = this.supports(fn, mode);
    if (why) throw new InvokeError('unavailable', why);
    const t0 = process.hrtime.bigint();
    let output: Uint8Array;
    if (mode === 'cold-process') {
      output = await this.inNewProcess(fn, input, opts?.timeoutMs ?? 10_000);
    } else if (mode === 'warm') {
      let live = this.warm.get(fn.name);
      if (!live) {
        live = this.instantiate(fn, this.cachedModule(fn));
        this.warm.set(fn.name, live);
      }
      try {
        output = this.run(fn, live, input);
      } catch (e) {
        // a failed instance may hold broken state: the next call gets a fresh one
        this.warm.delete(fn.name);
        throw e;
      }
    } else {
      // [coldtrace] optional phase marks (InvokeOptions.onPhase); nothing happens without a callback
      const phase = opts?.onPhase;
      let module: WebAssembly.Module;
      if (mode === 'cold') module = this.cachedModule(fn);
      else {
        const bytes = withNonce(this.moduleBytes(fn), ++this.nonce);
        phase?.('compile_start');
        module = this.compile(fn, bytes);
        phase?.('compile_done');
      }
      phase?.('instantiate_start');
      const live = this.instantiate(fn, module);
      phase?.('instantiate_done');
      output = this.run(fn, live, input);
      phase?.('run_done');
    }
    return { output, elapsedNs: Number(process.hrtime.bigint() - t0) };
  }

  /** Idle instances are held by an executor process, the process that holds them in production; it is their fixed cost. */
  async startIdle(fn: FunctionEntry, opts: IdleOptions): Promise<IdleInstances> {
    const why = this.supports(fn, 'warm');
    if (why) throw new InvokeError('unavailable', why);
    this.moduleBytes(fn); // a bad module fails here, not in the executor
    return startIdleExecutor({
      ...opts,
      variant: 'wasm',
      fn: fn.name,
      memoryLimitMiB: (this.maxPages * WASM_PAGE) / 2 ** 20,
      workDir: this.workDir,
      method: 'one executor process (agent-main, as a gateway starts it; the fixed cost) holding N instances of one compiled module; each has its own linear memory, WASI host and a guarded address-space reservation',
    });
  }

  /** In an executor asked to hold idle instances: one more instance, after one call, kept until teardown. */
  async holdIdle(fn: FunctionEntry, input: Uint8Array): Promise<Uint8Array> {
    const why = this.supports(fn, 'warm');
    if (why) throw new InvokeError('unavailable', why);
    const live = this.instantiate(fn, this.cachedModule(fn));
    const out = this.run(fn, live, input);
    this.held.push(live);
    return out;
  }

  async teardown(): Promise<void> {
    for (const c of this.children) c.kill('SIGKILL');
    this.children.clear();
    for (const f of this.files.values()) fs.rmSync(f, { force: true });
    this.files.clear();
    this.held.length = 0;
    this.warm.clear();
    this.modules.clear();
    this.bytes.clear();
  }
}


const plugin: VariantPlugin = {
  name: 'wasm',
  modes: WASM_MODES,
  summary: 'V8 WebAssembly with an in-memory WASI host: cold-compile (compile+instantiate), cold (instantiate a cached module), warm (reuse an instance)',
  create: (opts) => new WasmVariant(opts),
};
export default plugin;

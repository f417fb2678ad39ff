// Variant "wasm": functions run in V8's WebAssembly engine in this process, with an in-memory WASI host.
// It gives no isolation by itself: it is meant to run inside an executor process, whose
// gateway kills and restarts it when a function overruns its timeout.
import fs from 'node:fs';
import type { FunctionEntry } from '../functions/types.js';
import { InvokeError, type Capability, type IdleInstances, type IdleOptions, type Invocation, type InvokeOptions, type Mode, type Variant, type VariantOptions, type VariantPlugin } from '../platform/variant.js';
import { startIdleExecutor } from '../platform/idle-executor.js';
import { WasiExit, WasiHost } from './wasm/wasi.js';
import { WASM_PAGE, capMemory, withNonce } from './wasm/module-edit.js';

interface Live {
  instance: WebAssembly.Instance;
  host: WasiHost;
  memory: WebAssembly.Memory;
}

class WasmVariant implements Variant {
  readonly name = 'wasm';
  readonly modes: readonly Mode[] = ['cold-compile', 'cold', 'warm'];
  private readonly bytes = new Map<string, Uint8Array>();
  private readonly modules = new Map<string, WebAssembly.Module>();
  private readonly warm = new Map<string, Live>();
  private nonce = 0;
  private readonly maxPages: number;
  /** idle instances this process holds (holdIdle) */
  private readonly held: Live[] = [];
  private readonly workDir: string;

  constructor(opts: VariantOptions) {
    this.workDir = opts.workDir;
    this.maxPages = Math.floor((opts.memoryLimitMiB * 2 ** 20) / WASM_PAGE);
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

  private moduleBytes(fn: FunctionEntry): Uint8Array {
    let b = this.bytes.get(fn.name);
    if (!b) {
      try {
        b = capMemory(fs.readFileSync(fn.wasm!.path), this.maxPages);
      } catch (e) {
        throw new InvokeError('invalid-module', `${fn.name}: ${(e as Error).message}`);
      }
      this.bytes.set(fn.name, b);
    }
    return b;
  }

  private compile(fn: FunctionEntry, bytes: Uint8Array): WebAssembly.Module {
    try {
      return new WebAssembly.Module(bytes);
    } catch (e) {
      throw new InvokeError('invalid-module', `${fn.name}: ${fn.wasm!.path} does not compile: ${(e as Error).message}`);
    }
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
    const host = new WasiHost([fn.name]);
    let instance: WebAssembly.Instance;
    try {
      instance = new WebAssembly.Instance(module, host.imports(module));
    } catch (e) {
      throw new InvokeError('invalid-module', `${fn.name}: cannot instantiate: ${(e as Error).message}`);
    }
    const memory = instance.exports.memory;
    if (!(memory instanceof WebAssembly.Memory)) throw new InvokeError('invalid-module', `${fn.name}: the module exports no memory`);
    host.bind(memory);
    const entry = fn.wasm!.abi === 'reactor' ? 'fx_invoke' : '_start';
    if (typeof instance.exports[entry] !== 'function') throw new InvokeError('invalid-module', `${fn.name}: the module does not export ${entry}`);
    const live = { instance, host, memory };
    const init = instance.exports._initialize;
    if (fn.wasm!.abi === 'reactor' && typeof init === 'function') this.call(fn, live, init as () => unknown);
    return live;
  }

  /** Runs one export, mapping traps, exits and a full memory to InvokeErrors. */
  private call(fn: FunctionEntry, live: Live, f: () => unknown): number {
    try {
      const r = f();
      return typeof r === 'number' ? r : 0;
    } catch (e) {
      if (e instanceof WasiExit) return e.code;
      if (this.memoryFull(live)) throw this.memoryError(fn, live);
      if (e instanceof WebAssembly.RuntimeError) {
        throw new InvokeError('function-error', `${fn.name} trapped: ${e.message}${stderrNote(live)}`);
      }
      throw new InvokeError('function-error', `${fn.name} failed: ${(e as Error).message ?? String(e)}${stderrNote(live)}`);
    }
  }

  // malloc fails a little before the cap: the request that failed was larger than what was left.
  private memoryFull(live: Live): boolean {
    const limit = this.maxPages * WASM_PAGE;
    return live.memory.buffer.byteLength >= limit - Math.max(2 * 2 ** 20, limit * 0.05);
  }

  private memoryError(fn: FunctionEntry, live: Live): InvokeError {
    const mib = (b: number) => (b / 2 ** 20).toFixed(1);
    return new InvokeError('memory-limit', `${fn.name} reached the memory limit: ${mib(live.memory.buffer.byteLength)} of ${mib(this.maxPages * WASM_PAGE)} MiB${stderrNote(live)}`);
  }

  private run(fn: FunctionEntry, live: Live, input: Uint8Array): Uint8Array {
    live.host.reset(input);
    const entry = fn.wasm!.abi === 'reactor' ? 'fx_invoke' : '_start';
    const status = this.call(fn, live, live.instance.exports[entry] as () => unknown);
    if (status !== 0) {
      if (this.memoryFull(live)) throw this.memoryError(fn, live);
      throw new InvokeError('function-error', `${fn.name} returned status ${status}${stderrNote(live)}`);
    }
    return live.host.takeStdout();
  }

  async invoke(fn: FunctionEntry, mode: Mode, input: Uint8Array, opts?: InvokeOptions): Promise<Invocation> {
    const why = this.supports(fn, mode);
    if (why) throw new InvokeError('unavailable', why);
    const t0 = process.hrtime.bigint();
    let output: Uint8Array;
    if (mode === 'warm') {
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
      method: 'one executor process (executor-main, the fixed cost) holding N instances of one compiled module; each has its own linear memory, WASI host and a guarded address-space reservation',
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
    this.held.length = 0;
    this.warm.clear();
    this.modules.clear();
    this.bytes.clear();
  }
}

function stderrNote(live: Live): string {
  const s = live.host.stderrText(500).trim();
  return s ? ` (stderr: ${s})` : '';
}

const plugin: VariantPlugin = {
  name: 'wasm',
  summary: 'V8 WebAssembly with an in-memory WASI host: cold-compile (compile+instantiate), cold (instantiate a cached module), warm (reuse an instance)',
  create: (opts) => new WasmVariant(opts),
};
export default plugin;

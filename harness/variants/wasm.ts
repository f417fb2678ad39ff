// Variant "wasm": functions run in V8's WebAssembly engine in this process, with an in-memory WASI host.
// It gives no isolation by itself: it is meant to run inside an executor process, whose
// gateway kills and restarts it when a function overruns its timeout. Mode cold-process is the
// exception: a new process per call (wasm/process-main.ts), killed on timeout like a container.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { FunctionEntry } from '../functions/types.js';
import { InvokeError, type Capability, type InstanceMemory, type Invocation, type InvokeOptions, type Mode, type Variant, type VariantOptions, type VariantPlugin } from '../platform/variant.js';
import { readProcessMemory } from '../platform/proc-memory.js';
import { WASM_PAGE, withNonce } from './wasm/module-edit.js';
import { compile, instantiate, loadBytes, run, type Live, type WasmCode } from './wasm/engine.js';
import { runOnce } from './native.js';

const PROCESS_MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'wasm', 'process-main.js');

class WasmVariant implements Variant {
  readonly name = 'wasm';
  readonly modes: readonly Mode[] = ['cold-compile', 'cold', 'cold-process', 'warm'];
  private readonly bytes = new Map<string, Uint8Array>();
  private readonly modules = new Map<string, WebAssembly.Module>();
  private readonly warm = new Map<string, Live>();
  /** per function, its capped module written to a file for cold-process children */
  private readonly files = new Map<string, string>();
  private readonly children = new Set<ChildProcess>();
  private nonce = 0;
  private readonly maxPages: number;
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

  /**
   * Marginal memory of idle instances in this process: each sample is the growth of the process's
   * RSS/PSS over a batch of new instances (after a full GC), divided by the batch size.
   */
  async measureIdle(fn: FunctionEntry, count: number): Promise<InstanceMemory[]> {
    const module = this.cachedModule(fn);
    const input = fn.workload.input(1, 'small');
    this.run(fn, this.instantiate(fn, module), input); // code compiled before the first reading
    const live: Live[] = [];
    const addBatch = () => {
      for (let j = 0; j < IDLE_BATCH; j++) {
        const l = this.instantiate(fn, module);
        this.run(fn, l, input);
        live.push(l);
      }
    };
    addBatch(); // unrecorded: lets the JS heap settle into its size for live instances
    gc?.();
    gc?.();
    const baseline = readProcessMemory(process.pid);
    let prev = baseline;
    const out: InstanceMemory[] = [];
    for (let i = 0; i < count; i++) {
      addBatch();
      gc?.();
      gc?.(); // a second pass frees what the first one's finalizers released
      const now = readProcessMemory(process.pid);
      out.push({
        rssBytes: (now.rssBytes - prev.rssBytes) / IDLE_BATCH,
        pssBytes: (now.pssBytes - prev.pssBytes) / IDLE_BATCH,
        method: `marginal growth of one process's RSS/PSS (/proc/self/smaps_rollup, after a full GC${gc ? '' : ' — unavailable, so noisier'}) per batch of ${IDLE_BATCH} idle instances; linear memory ${(live[0]!.memory.buffer.byteLength / 1024).toFixed(0)} KiB each; compiled code shared; the process itself (${(baseline.pssBytes / 2 ** 20).toFixed(1)} MiB PSS) is a fixed cost shared by all instances`,
      });
      prev = now;
    }
    live.length = 0;
    return out;
  }

  async teardown(): Promise<void> {
    for (const c of this.children) c.kill('SIGKILL');
    this.children.clear();
    for (const f of this.files.values()) fs.rmSync(f, { force: true });
    this.files.clear();
    this.warm.clear();
    this.modules.clear();
    this.bytes.clear();
  }
}

const IDLE_BATCH = 32;

// A full GC before each memory reading keeps garbage from earlier instances out of the next sample.
const gc: (() => void) | undefined = (() => {
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
})();


const plugin: VariantPlugin = {
  name: 'wasm',
  summary: 'V8 WebAssembly with an in-memory WASI host: cold-compile (compile+instantiate), cold (instantiate a cached module), warm (reuse an instance)',
  create: (opts) => new WasmVariant(opts),
};
export default plugin;

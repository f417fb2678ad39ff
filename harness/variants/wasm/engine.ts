// The WASM engine's steps, each on its own: load the module's bytes (memory maximum capped),
// compile, instantiate (a reactor's _initialize runs here), run one call; snapshot and restore
// are in snapshot.ts. The wasm variant and its
// process-per-call child (process-main.ts) both use them, so both run the same code.
import fs from 'node:fs';
import type { WasmAbi } from '../../functions/types.js';
import { InvokeError } from '../../platform/variant.js';
import { WasiExit, WasiHost } from './wasi.js';
import { WASM_PAGE, capMemory } from './module-edit.js';

/** What the engine needs to know of a function. */
export interface WasmCode {
  name: string;
  path: string;
  abi: WasmAbi;
}

export interface Live {
  instance: WebAssembly.Instance;
  host: WasiHost;
  memory: WebAssembly.Memory;
}

export function loadBytes(code: WasmCode, maxPages: number): Uint8Array {
  try {
    return capMemory(fs.readFileSync(code.path), maxPages);
  } catch (e) {
    throw new InvokeError('invalid-module', `${code.name}: ${(e as Error).message}`);
  }
}

export function compile(code: WasmCode, bytes: Uint8Array): WebAssembly.Module {
  try {
    return new WebAssembly.Module(bytes);
  } catch (e) {
    throw new InvokeError('invalid-module', `${code.name}: ${code.path} does not compile: ${(e as Error).message}`);
  }
}

const entryOf = (code: WasmCode) => (code.abi === 'reactor' ? 'fx_invoke' : '_start');

/** `initialise: false` leaves a reactor's _initialize unrun: the memory is then the module's initial image (a snapshot restores over it). */
export function instantiate(code: WasmCode, module: WebAssembly.Module, maxPages: number, initialise = true, args: string[] = [code.name]): Live {
  const host = new WasiHost(args);
  let instance: WebAssembly.Instance;
  try {
    instance = new WebAssembly.Instance(module, host.imports(module));
  } catch (e) {
    throw new InvokeError('invalid-module', `${code.name}: cannot instantiate: ${(e as Error).message}`);
  }
  const memory = instance.exports.memory;
  if (!(memory instanceof WebAssembly.Memory)) throw new InvokeError('invalid-module', `${code.name}: the module exports no memory`);
  host.bind(memory);
  if (typeof instance.exports[entryOf(code)] !== 'function') throw new InvokeError('invalid-module', `${code.name}: the module does not export ${entryOf(code)}`);
  const live = { instance, host, memory };
  const init = instance.exports._initialize;
  if (initialise && code.abi === 'reactor' && typeof init === 'function') call(code, live, maxPages, init as () => unknown);
  return live;
}

/** One call: input on stdin, stdout returned. A trap, an exit status other than 0 or a full memory is an InvokeError. */
export function run(code: WasmCode, live: Live, input: Uint8Array, maxPages: number): Uint8Array {
  live.host.reset(input);
  const status = call(code, live, maxPages, live.instance.exports[entryOf(code)] as () => unknown);
  if (status !== 0) {
    if (memoryFull(live, maxPages)) throw memoryError(code, live, maxPages);
    throw new InvokeError('function-error', `${code.name} returned status ${status}${stderrNote(live)}`);
  }
  return live.host.takeStdout();
}

/** Runs one export, mapping traps, exits and a full memory to InvokeErrors. */
function call(code: WasmCode, live: Live, maxPages: number, f: () => unknown): number {
  try {
    const r = f();
    return typeof r === 'number' ? r : 0;
  } catch (e) {
    if (e instanceof WasiExit) return e.code;
    if (memoryFull(live, maxPages)) throw memoryError(code, live, maxPages);
    if (e instanceof WebAssembly.RuntimeError) {
      throw new InvokeError('function-error', `${code.name} trapped: ${e.message}${stderrNote(live)}`);
    }
    throw new InvokeError('function-error', `${code.name} failed: ${(e as Error).message ?? String(e)}${stderrNote(live)}`);
  }
}

// malloc fails a little before the cap: the request that failed was larger than what was left.
function memoryFull(live: Live, maxPages: number): boolean {
  const limit = maxPages * WASM_PAGE;
  return live.memory.buffer.byteLength >= limit - Math.max(2 * 2 ** 20, limit * 0.05);
}

function memoryError(code: WasmCode, live: Live, maxPages: number): InvokeError {
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  return new InvokeError('memory-limit', `${code.name} reached the memory limit: ${mib(live.memory.buffer.byteLength)} of ${mib(maxPages * WASM_PAGE)} MiB${stderrNote(live)}`);
}

function stderrNote(live: Live): string {
  const s = live.host.stderrText(500).trim();
  return s ? ` (stderr: ${s})` : '';
}

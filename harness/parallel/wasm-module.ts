// The kernels' wasm builds (wasm-fixtures/build/parallel/kernels-<flavour>.wasm), compiled once each,
// with the platform's memory cap written into their memory import.
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../paths.js';
import { capMemory, WASM_PAGE } from '../variants/wasm/module-edit.js';
import { exportState } from '../variants/wasm/module-globals.js';

export type Flavour = 'scalar' | 'simd' | 'threads' | 'spawn';
export const kernelsDir = path.join(repoRoot, 'wasm-fixtures', 'build', 'parallel');
export const nativeRunner = path.join(kernelsDir, 'parallel-native');

export function kernelsWasm(flavour: Flavour): string {
  return path.join(kernelsDir, `kernels-${flavour}.wasm`);
}

const cache = new Map<string, { module: WebAssembly.Module; stackGlobal: string | null }>();

/**
 * The module of a flavour with its memory's maximum capped at `capPages`, and the export name of its
 * stack pointer if it has one: wasm-ld's __stack_pointer is global 0 (a mutable i32, kept internal, so
 * exported here) and every instance over one shared memory must get a stack of its own.
 */
export function kernelModuleAndStack(flavour: Flavour, capPages: number): { module: WebAssembly.Module; stackGlobal: string | null } {
  const key = `${flavour}:${capPages}`;
  let m = cache.get(key);
  if (!m) {
    const file = kernelsWasm(flavour);
    if (!fs.existsSync(file)) throw new Error(`${file} is missing: build it with node wasm-fixtures/build.mjs`);
    const st = exportState(capMemory(fs.readFileSync(file), capPages));
    const sp = st.globals.find((g) => g.index === 0 && g.type === 'i32');
    m = { module: new WebAssembly.Module(st.bytes), stackGlobal: sp?.exportName ?? null };
    cache.set(key, m);
  }
  return m;
}

export function kernelModule(flavour: Flavour, capPages: number): WebAssembly.Module {
  return kernelModuleAndStack(flavour, capPages).module;
}

/** pages for `bytes`, refused with the reason when over the cap */
export function pagesFor(bytes: number, capPages: number, what: string): number {
  const pages = Math.ceil(bytes / WASM_PAGE);
  if (pages > capPages) throw new RangeError(`${what} needs ${(bytes / 2 ** 20).toFixed(1)} MiB of wasm memory, over the ${(capPages * WASM_PAGE) / 2 ** 20} MiB cap`);
  return pages;
}

// The native pthreads runner (wasm-fixtures/parallel/parallel_native.c): one process per
// (kernel, size, threads) that times its own reps and prints the FNV-1a 32 of its output.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { Kernel } from './kernels.js';
import { nativeRunner } from './wasm-module.js';

export interface NativeResult {
  ns: number[];
  hash: number;
}

export function runNative(kernel: Kernel, size: number, threads: number, reps: number, seed: number, timeoutMs = 120_000): Promise<NativeResult> {
  if (!fs.existsSync(nativeRunner)) return Promise.reject(new Error(`${nativeRunner} is missing: build it with node wasm-fixtures/build.mjs`));
  return new Promise((resolve, reject) => {
    const child = spawn(nativeRunner, [kernel, String(size), String(threads), String(reps), String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`parallel-native ${kernel} ${size} ${threads}: ${signal ? `killed by ${signal}${signal === 'SIGKILL' ? ` (timeout ${timeoutMs} ms)` : ''}` : `exit ${code}`}: ${err.trim()}`));
      const ns = [...out.matchAll(/^ns (\d+)$/gm)].map((m) => Number(m[1]));
      const h = /^hash ([0-9a-f]{8})$/m.exec(out);
      if (ns.length !== reps || !h) return reject(new Error(`parallel-native ${kernel} ${size} ${threads}: unexpected output ${JSON.stringify(out.slice(0, 200))}`));
      resolve({ ns, hash: parseInt(h[1]!, 16) });
    });
  });
}

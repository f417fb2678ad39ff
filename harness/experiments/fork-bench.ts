// Local fork latency of a WASM instance against its state size, for each copy mode (and copy-on-write), with and without
// a pool of prefaulted instances. A script, not an experiment (no results folder):
//   node --expose-gc build/harness/experiments/fork-bench.js [--sizes 1,16,128] [--reps N]
// The parent is a statefill instance that served one call (N MiB of state); each fork is checked
// (its answer: calls=2 and the parent's checksum) outside the timed region.
import { loadCatalog } from '../functions/catalog.js';
import { statefillAnswer } from '../functions/workloads/statefill.js';
import { run } from '../variants/wasm/engine.js';
import { InstancePool } from '../variants/wasm/instance-pool.js';
import { COPY_MODES, fork, instantiateParent, prepareImage, restoreInto, takeSnapshot } from '../variants/wasm/snapshot.js';
import { decodeSnapshot, encodeSnapshot } from '../variants/wasm/snapshot-format.js';
import { CowImage } from '../variants/wasm/cow-image.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1]! : dflt;
};
const sizes = arg('--sizes', '1,16,128').split(',').map(Number);
const repsFlag = Number(arg('--reps', '0'));
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const now = () => process.hrtime.bigint();
const us = (ns: number) => (ns / 1000).toFixed(ns < 1e6 ? 1 : 0);
const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;

const fn = (await loadCatalog()).get('statefill');
const code = { name: fn.name, path: fn.wasm!.path, abi: fn.wasm!.abi };
console.log('size_mib copy pool snapshot_pages snapshot_ms fork_us_p50 fork_us_p10 fork_us_p90 first_response_us_p50 pool_fill_us_per_instance reps');
for (const mib of sizes) {
  const maxPages = Math.ceil((mib + 8) * 16);
  const img = prepareImage(code, maxPages);
  const input = Buffer.from(String(mib));
  const want = statefillAnswer(mib, 2);
  const parent = instantiateParent(img);
  run(code, parent, input, maxPages);
  const t0 = now();
  const snap = decodeSnapshot(encodeSnapshot(takeSnapshot(img, parent, 1)));
  const snapMs = Number(now() - t0) / 1e6;
  const reps = repsFlag || (mib <= 1 ? 300 : mib <= 16 ? 60 : mib <= 128 ? 15 : 5);
  const cow = CowImage.create(img, snap);
  const ways = [...COPY_MODES.flatMap((copy) => [false, true].map((pooled) => ({ copy, pooled }))), { copy: 'cow' as const, pooled: true }];
  for (const { copy, pooled } of ways) {
    // cow maps the image over a fresh instance: prefaulting it would only add pages to drop
    const pool = pooled ? new InstancePool(img, snap, 1, copy !== 'cow') : null;
    const forkNs: number[] = [];
    const firstNs: number[] = [];
    const fillNs: number[] = [];
    for (let r = 0; r < reps + 2; r++) {
      // big children are dropped between forks; small ones are collected now and then, and never right before a fork
      if (mib >= 16 || r % 25 === 0) gc();
      if (pool) fillNs.push(pool.fill());
      const a = now();
      const child = copy === 'cow' ? cow.forkInto(img, pool!.take()!) : pool ? restoreInto(img, snap, copy, pool.take()!) : fork(img, snap, copy);
      const b = now();
      // the first response includes the function's own pass over its whole state
      const out = r < 3 || r === reps + 1 || mib <= 16 ? Buffer.from(run(code, child, input, maxPages)).toString() : want;
      const c = now();
      if (out !== want) throw new Error(`fork ${copy}${pooled ? '+pool' : ''} of ${mib} MiB answered ${JSON.stringify(out)}, want ${JSON.stringify(want)}`);
      if (r >= 2) {
        forkNs.push(Number(b - a));
        if (mib <= 16) firstNs.push(Number(c - a));
      }
    }
    const fillPer = fillNs.length ? q(fillNs.slice(2), 0.5) : NaN;
    console.log([mib, copy, pooled ? (copy === 'cow' ? 'fresh' : 'prefaulted') : 'none', snap.pages.length, snapMs.toFixed(1), us(q(forkNs, 0.5)), us(q(forkNs, 0.1)), us(q(forkNs, 0.9)), firstNs.length ? us(q(firstNs, 0.5)) : '-', Number.isNaN(fillPer) ? '-' : us(fillPer), reps].join(' '));
    pool?.clear();
  }
  cow.close();
}

// The working set of a snapshot: the pages the first call after a fork needs. V8 gives no way to see
// which pages a call reads, so it is recorded and then checked on local forks: a full fork serves the
// call and the pages it wrote are the candidates; a second fork holding only those pages (the other
// dirty pages left at the initial image) must then answer alike and end with the same memory outside
// the left-out pages. When it does not (the call read a page it did not write), the working set is
// every dirty page, and prefetch degenerates to dirty-only.
import { run } from './engine.js';
import { fork, freshInstance, fullImage, restoreInto, type ForkImage } from './snapshot.js';
import type { Snapshot } from './snapshot-format.js';

export interface WorkingSet {
  /** page-list indices k, increasing */
  pages: number[];
  validated: boolean;
}

export function recordWorkingSet(img: ForkImage, s: Snapshot, input: Uint8Array, maxPages: number): WorkingSet {
  const P = s.pageSize;
  const image = fullImage(img, s);
  const a = fork(img, s, 'dirty');
  const outA = Buffer.from(run(img.code, a, input, maxPages));
  const memA = Buffer.from(a.memory.buffer);
  const img0 = Buffer.from(image.buffer, image.byteOffset, image.byteLength);
  const cand: number[] = [];
  for (let k = 0; k < s.pages.length; k++) {
    const o = s.pages[k]! * P;
    if (!memA.subarray(o, o + P).equals(img0.subarray(o, o + P))) cand.push(k);
  }
  const all = { pages: [...s.pages.keys()], validated: false };
  if (cand.length === s.pages.length) return { pages: cand, validated: true };
  const data = new Uint8Array(cand.length * P);
  cand.forEach((k, j) => data.set(s.data.subarray(k * P, (k + 1) * P), j * P));
  const sub: Snapshot = { ...s, pages: Uint32Array.from(cand, (k) => s.pages[k]!), data };
  const b = restoreInto(img, sub, 'dirty', freshInstance(img, s.meta.wasi.args, s.memoryBytes));
  let outB: Buffer;
  try {
    outB = Buffer.from(run(img.code, b, input, maxPages));
  } catch {
    return all;
  }
  const memB = Buffer.from(b.memory.buffer);
  if (!outB.equals(outA) || memB.length !== memA.length) return all;
  const left = new Set<number>();
  const inCand = new Set(cand);
  for (let k = 0; k < s.pages.length; k++) if (!inCand.has(k)) left.add(s.pages[k]!);
  for (let i = 0, o = 0; o < memA.length; i++, o += P) {
    if (left.has(i)) continue;
    if (!memA.subarray(o, o + P).equals(memB.subarray(o, o + P))) return all;
  }
  return { pages: cand, validated: true };
}

/** [k, count, …] runs of increasing indices */
export function toRuns(ks: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < ks.length; ) {
    let j = i + 1;
    while (j < ks.length && ks[j] === ks[j - 1]! + 1) j++;
    out.push(ks[i]!, j - i);
    i = j;
  }
  return out;
}

export function fromRuns(runs: readonly number[], pageCount: number): number[] {
  if (runs.length % 2) throw new Error('working set: odd run list');
  const out: number[] = [];
  for (let i = 0; i < runs.length; i += 2) {
    const k = runs[i]!;
    const n = runs[i + 1]!;
    if (!(Number.isInteger(k) && Number.isInteger(n) && k >= 0 && n > 0 && k + n <= pageCount) || (out.length && k <= out[out.length - 1]!)) throw new Error(`working set: run [${k}, ${n}] is out of order or past the ${pageCount} pages`);
    for (let j = 0; j < n; j++) out.push(k + j);
  }
  return out;
}

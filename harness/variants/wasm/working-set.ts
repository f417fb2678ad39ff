// The working set of a snapshot: the pages the first call after a fork needs. Two ways to record it,
// both on local forks at the parent:
// - damon (where it can run, bpf/damon-access.ts): the kernel watches the accessed bits of a forked
//   instance's pages while it serves the call; reads count, and the function is not instrumented;
// - writes (elsewhere, with the reason): V8 shows no reads, so the pages the call wrote are taken.
// Either set is then checked: a second fork holding only those pages (the other dirty pages left at
// the initial image) must answer alike and end with the same memory outside the left-out pages.
// When it does not, the working set is every dirty page, and prefetch degenerates to dirty-only.
import { DEFAULT_TIMING, PassTooShort, recordAccesses, damonAccessUnavailable } from '../../bpf/damon-access.js';
import { run } from './engine.js';
import { fork, freshInstance, fullImage, restoreInto, type ForkImage } from './snapshot.js';
import type { Snapshot } from './snapshot-format.js';

export interface WorkingSet {
  /** page-list indices k, increasing */
  pages: number[];
  validated: boolean;
  /** how it was recorded: "damon" or "writes", and why not damon */
  method: string;
  /** ns: recording (forks, calls, the kernel's watch) and checking */
  recordNs: number;
  /** damon: the call while watched, the same call on the checking fork unwatched, and the program's kernel time */
  watchedCallNs?: number;
  plainCallNs?: number;
  programNs?: number | null;
}

const OS_PAGE = 4096;
const now = () => process.hrtime.bigint();

/** damon where it can run here, else writes (the reason in `method`). */
export async function recordWorkingSet(img: ForkImage, s: Snapshot, input: Uint8Array, maxPages: number): Promise<WorkingSet> {
  const t0 = now();
  const writes = (why: string): WorkingSet => ({ ...byWrites(img, s, input, maxPages), method: `writes (no damon: ${why})`, recordNs: Number(now() - t0) });
  const why = damonAccessUnavailable();
  if (why) return writes(why);
  let a = fork(img, s, 'dirty');
  let out: Uint8Array = new Uint8Array(0);
  let rec: Awaited<ReturnType<typeof recordAccesses>> | undefined;
  let timing = DEFAULT_TIMING;
  // a call that did not fit in DAMON's pass has run on that fork: a new fork, a longer pass
  for (let attempt = 0; !rec; attempt++) {
    try {
      const child = a;
      rec = await recordAccesses(child.memory, () => {
        out = run(img.code, child, input, maxPages);
      }, timing);
    } catch (e) {
      if (!(e instanceof PassTooShort) || attempt >= 2) return writes((e as Error).message);
      timing = { ...timing, passMs: e.needMs };
      a = fork(img, s, 'dirty');
    }
  }
  const touched = new Set(rec.pages);
  const P = s.pageSize;
  const cand: number[] = [];
  for (let k = 0; k < s.pages.length; k++) {
    for (let o = s.pages[k]! * P; o < (s.pages[k]! + 1) * P; o += OS_PAGE) {
      if (touched.has(o / OS_PAGE)) {
        cand.push(k);
        break;
      }
    }
  }
  const checked = check(img, s, cand, Buffer.from(out), Buffer.from(a.memory.buffer), input, maxPages);
  let note = rec.touchedBefore ? `; ${rec.touchedBefore} page(s) were already marked idle before DAMON started` : '';
  if (!checked.ws.validated) note += `; a fork holding the ${cand.length} dirty pages it saw touched did not answer alike: every dirty page`;
  return {
    ...checked.ws,
    method: `damon (${rec.reports} reports, a ${timing.passMs} ms pass${note})`,
    recordNs: Number(now() - t0),
    watchedCallNs: rec.callNs,
    plainCallNs: checked.callNs,
    programNs: rec.programNs,
  };
}

function byWrites(img: ForkImage, s: Snapshot, input: Uint8Array, maxPages: number): Pick<WorkingSet, 'pages' | 'validated'> {
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
  return check(img, s, cand, outA, memA, input, maxPages).ws;
}

/** The candidate pages, if a fork holding only them answers and ends as the full fork did; else every page. */
function check(img: ForkImage, s: Snapshot, cand: number[], outA: Buffer, memA: Buffer, input: Uint8Array, maxPages: number): { ws: Pick<WorkingSet, 'pages' | 'validated'>; callNs?: number } {
  const P = s.pageSize;
  const all = { pages: [...s.pages.keys()], validated: false };
  if (cand.length === s.pages.length) return { ws: { pages: cand, validated: true } };
  const data = new Uint8Array(cand.length * P);
  cand.forEach((k, j) => data.set(s.data.subarray(k * P, (k + 1) * P), j * P));
  const sub: Snapshot = { ...s, pages: Uint32Array.from(cand, (k) => s.pages[k]!), data };
  const b = restoreInto(img, sub, 'dirty', freshInstance(img, s.meta.wasi.args, s.memoryBytes));
  let outB: Buffer;
  const c0 = now();
  try {
    outB = Buffer.from(run(img.code, b, input, maxPages));
  } catch {
    return { ws: all };
  }
  const callNs = Number(now() - c0);
  const memB = Buffer.from(b.memory.buffer);
  if (!outB.equals(outA) || memB.length !== memA.length) return { ws: all, callNs };
  const left = new Set<number>();
  const inCand = new Set(cand);
  for (let k = 0; k < s.pages.length; k++) if (!inCand.has(k)) left.add(s.pages[k]!);
  for (let i = 0, o = 0; o < memA.length; i++, o += P) {
    if (left.has(i)) continue;
    if (!memA.subarray(o, o + P).equals(memB.subarray(o, o + P))) return { ws: all, callNs };
  }
  return { ws: { pages: cand, validated: true }, callNs };
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

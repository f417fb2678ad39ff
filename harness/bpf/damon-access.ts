// Which pages of a WebAssembly memory a call touches (reads included), seen by the kernel: DAMON
// watches the accessed bits of the memory's physical pages, bpf/wstrace.bpf.c collects its reports.
//
// Why not page faults: a forked instance's pages were all written by the restore, so the call's
// first touch of a page raises no fault (exceptions:page_fault_user sees nothing); soft-dirty
// write-protection (clear_refs 4) makes writes fault, but not reads; page_idle is not built here;
// DAMON's virtual-address operations (vaddr, fvaddr) are not built either, only paddr. So: find the
// memory's virtual range (/proc/self/maps, checked against its contents through /proc/self/mem),
// make every page present, read its physical frame (/proc/self/pagemap, root), give DAMON one
// region per frame, clear the accessed bits and the TLB (MADV_COLD), start one long DAMON pass, wait
// until it has cleared every page (marked idle), run the call, let it check and report, stop. DAMON's sysfs is global: we refuse when a kdamond exists, and remove
// ours on every path.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { C } from '../platform/libc.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpfObject, TRACEFS, bpfCapability, enableRunTimeStats, ensureTracefs, progInfo, type LinkHandle } from './libbpf.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
function repoRoot(): string {
  for (let d = HERE; path.dirname(d) !== d; d = path.dirname(d)) if (fs.existsSync(path.join(d, 'bpf', 'build.mjs'))) return d;
  return path.resolve(HERE, '..', '..', '..');
}
export const WSTRACE_OBJECT = path.join(repoRoot(), 'bpf', 'build', 'wstrace.bpf.o');
export const DAMON_ADMIN = '/sys/kernel/mm/damon/admin/kdamonds';
const OS_PAGE = 4096;
/** DAMON regions (one per page) the program's map holds */
export const MAX_PAGES = 65536;

export interface DamonTiming {
  /** ms from DAMON's start to its one check of the pages: the call must fit well inside */
  passMs: number;
  /** ms to wait for DAMON to clear the pages, and for its reports after the check */
  timeoutMs: number;
}
export const DEFAULT_TIMING: DamonTiming = { passMs: 400, timeoutMs: 5000 };

/** The call did not end well before DAMON's check: record again (on a new fork) with a pass of `needMs`. */
export class PassTooShort extends Error {
  override name = 'PassTooShort';
  constructor(
    message: string,
    readonly needMs: number,
  ) {
    super(message);
  }
}

export interface AccessRecord {
  /** memory offsets / 4096 of the pages the call touched, increasing */
  pages: number[];
  /** pages already marked idle before DAMON started (stale flags: such a page could be missed); should be none */
  touchedBefore: number;
  /** ns: the whole recording (setup, waits, call, teardown), and the call alone */
  totalNs: number;
  callNs: number;
  /** DAMON's reports seen by the program, and the program's own kernel time (null: stats unavailable) */
  reports: number;
  programNs: number | null;
}

/** Why the DAMON recording cannot run here, or null. Reads only (creates no kdamond). */
export function damonAccessUnavailable(objectPath = WSTRACE_OBJECT): string | null {
  const cap = bpfCapability();
  if (!cap.ok) return cap.reason;
  if (!fs.existsSync(objectPath)) return `${path.relative(repoRoot(), objectPath)} is not built (node bpf/build.mjs)`;
  if (!fs.existsSync(DAMON_ADMIN)) return `no DAMON sysfs interface (${DAMON_ADMIN}; CONFIG_DAMON_SYSFS)`;
  const n = fs.readFileSync(path.join(DAMON_ADMIN, 'nr_kdamonds'), 'utf8').trim();
  if (n !== '0' && !recordingHere()) return `DAMON is in use here (nr_kdamonds=${n}): its settings are not ours to change`;
  try {
    ensureTracefs();
  } catch (e) {
    return `tracefs unavailable: ${(e as Error).message}`;
  }
  if (!fs.existsSync(path.join(TRACEFS, 'events', 'damon', 'damon_aggregated'))) return 'the tracepoint damon:damon_aggregated does not exist here';
  return null;
}

/** The virtual address of `memory`'s bytes: the one read-write mapping of its size that holds a random
 *  marker written into its first bytes for the search (a fork and its parent hold the same bytes). */
export function memoryAddress(memory: WebAssembly.Memory): bigint {
  const size = BigInt(memory.buffer.byteLength);
  const u8 = new Uint8Array(memory.buffer);
  const saved = Buffer.from(u8.subarray(0, 16));
  const marker = crypto.randomBytes(16);
  u8.set(marker, 0);
  const fd = fs.openSync('/proc/self/mem', 'r');
  try {
    const hits: bigint[] = [];
    for (const line of fs.readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) rw/.exec(line);
      if (!m) continue;
      const a = BigInt(`0x${m[1]}`);
      if (BigInt(`0x${m[2]}`) - a !== size) continue;
      const b = Buffer.alloc(16);
      fs.readSync(fd, b, 0, 16, a);
      if (b.equals(marker)) hits.push(a);
    }
    if (hits.length !== 1) throw new Error(`the memory's mapping (${size} bytes, read-write, holding the marker) was found ${hits.length} times in /proc/self/maps`);
    return hits[0]!;
  } finally {
    u8.set(saved, 0);
    fs.closeSync(fd);
  }
}

/** Physical frame of each page of [addr, addr + pages × 4096); every page must be present. */
export function frames(addr: bigint, pages: number): bigint[] {
  const fd = fs.openSync('/proc/self/pagemap', 'r');
  try {
    const b = Buffer.alloc(8 * pages);
    fs.readSync(fd, b, 0, b.length, (addr / BigInt(OS_PAGE)) * 8n);
    const out: bigint[] = [];
    for (let k = 0; k < pages; k++) {
      const e = b.readBigUInt64LE(8 * k);
      const pfn = e & ((1n << 55n) - 1n);
      if (!(e >> 63n)) throw new Error(`page ${k} of the memory is not present`);
      if (pfn === 0n) throw new Error('/proc/self/pagemap hides frame numbers (root or CAP_SYS_ADMIN needed)');
      out.push(pfn);
    }
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

/** One recording at a time on this machine (DAMON's sysfs is global): a lock file naming its pid. A
 *  dead holder's lock is taken over and its kdamond removed (a SIGKILLed recording leaves both). */
export const LOCK_FILE = path.join(os.tmpdir(), 'fxh-damon.lock');

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** another recording of ours holds DAMON (a live pid in the lock file): wait for it, it is not a reason */
function recordingHere(): boolean {
  try {
    const holder = Number(fs.readFileSync(LOCK_FILE, 'utf8'));
    return Number.isInteger(holder) && holder > 0 && holder !== process.pid && pidAlive(holder);
  } catch {
    return false;
  }
}

/** how long a recording waits for another one on this machine to finish (each takes well under a second) */
const LOCK_WAIT_MS = 15_000;

async function lock(): Promise<() => void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      fs.writeFileSync(LOCK_FILE, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(LOCK_FILE, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder = NaN;
    try {
      holder = Number(fs.readFileSync(LOCK_FILE, 'utf8'));
    } catch {
      continue; // released between the two calls
    }
    if (Number.isInteger(holder) && holder > 0 && pidAlive(holder)) {
      if (Date.now() > deadline) throw new Error(`DAMON is being used by another recording (pid ${holder}, ${LOCK_FILE}) for more than ${LOCK_WAIT_MS} ms`);
      await sleep(20);
      continue;
    }
    // the holder died mid-recording: its kdamond may still run
    try {
      write('0/state', 'off');
    } catch {
      /* none */
    }
    try {
      write('nr_kdamonds', 0);
    } catch {
      /* none */
    }
    fs.rmSync(LOCK_FILE, { force: true });
    process.stderr.write(`damon-access: removed the lock and kdamond of pid ${holder}, which died while recording\n`);
  }
}

/** pages of `pfn` whose frame is marked idle (KPF_IDLE, /proc/kpageflags; DAMON sets it when it clears the accessed bit) */
function idleCount(pfn: readonly bigint[]): number {
  const fd = fs.openSync('/proc/kpageflags', 'r');
  try {
    const b = Buffer.alloc(8);
    let n = 0;
    for (const f of pfn) {
      fs.readSync(fd, b, 0, 8, f * 8n);
      if ((b.readBigUInt64LE(0) >> 25n) & 1n) n++;
    }
    return n;
  } finally {
    fs.closeSync(fd);
  }
}

const MADV_COLD = 20;
function coldRange(addr: bigint, len: number): void {
  if (C().madvise(addr, len, MADV_COLD) !== 0) throw new Error(`madvise(MADV_COLD) on the memory at 0x${addr.toString(16)} failed`);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const write = (p: string, v: string | number | bigint) => {
  try {
    fs.writeFileSync(path.join(DAMON_ADMIN, p), String(v));
  } catch (e) {
    throw new Error(`DAMON: writing ${v} to ${p}: ${(e as Error).message}`);
  }
};

/** Runs `call` while DAMON and the program watch `memory`'s pages; the pages it touched. */
export async function recordAccesses(memory: WebAssembly.Memory, call: () => void, timing: DamonTiming = DEFAULT_TIMING): Promise<AccessRecord> {
  const unlock = await lock();
  try {
    const why = damonAccessUnavailable(); // again, now that no other recording of ours runs
    if (why) throw new Error(why);
    return await recordLocked(memory, call, timing);
  } finally {
    unlock();
  }
}

async function recordLocked(memory: WebAssembly.Memory, call: () => void, timing: DamonTiming): Promise<AccessRecord> {
  const t0 = process.hrtime.bigint();
  const u8 = new Uint8Array(memory.buffer);
  const pages = u8.length / OS_PAGE;
  if (pages > MAX_PAGES) throw new Error(`${pages} pages: the recording holds at most ${MAX_PAGES}`);
  // every page present (a page never written has no frame): write each one's first byte back
  for (let o = 0; o < u8.length; o += OS_PAGE) u8[o] = u8[o]!;
  const addr = memoryAddress(memory);
  const pfn = frames(addr, pages);
  const byFrame = new Map(pfn.map((f, k) => [f * BigInt(OS_PAGE), k]));
  if (byFrame.size !== pages) throw new Error('two pages of the memory share a frame');
  const order = [...pfn.keys()].sort((a, b) => (pfn[a]! < pfn[b]! ? -1 : 1));
  // DAMON clears accessed bits without flushing the TLB, so a page whose translation stays cached would
  // be read without its bit being set again (a test saw 194 of 259 pages). MADV_COLD clears the bits of
  // the pages the setup just touched (all of them) and flushes their translations; contents stay. From
  // here until the call nothing touches the memory.
  coldRange(addr, u8.length);

  const obj = BpfObject.open(WSTRACE_OBJECT);
  let link: LinkHandle | null = null;
  let statsFd = -1;
  let kdamond = false;
  let rec: Omit<AccessRecord, 'totalNs'>;
  try {
    obj.load();
    const prog = obj.program('fxh_ws_damon');
    try {
      statsFd = enableRunTimeStats();
    } catch {
      /* the program's run time is then unknown */
    }
    link = prog.attach();
    write('nr_kdamonds', 1);
    kdamond = true;
    write('0/contexts/nr_contexts', 1);
    write('0/contexts/0/operations', 'paddr');
    write('0/contexts/0/monitoring_attrs/intervals/sample_us', timing.passMs * 1000);
    write('0/contexts/0/monitoring_attrs/intervals/aggr_us', timing.passMs * 1000);
    write('0/contexts/0/monitoring_attrs/intervals/update_us', 1_000_000);
    write('0/contexts/0/monitoring_attrs/nr_regions/max', Math.max(3, pages));
    write('0/contexts/0/monitoring_attrs/nr_regions/min', Math.max(3, pages));
    write('0/contexts/0/targets/nr_targets', 1);
    write('0/contexts/0/targets/0/regions/nr_regions', pages);
    order.forEach((k, i) => {
      write(`0/contexts/0/targets/0/regions/${i}/start`, pfn[k]! * BigInt(OS_PAGE));
      write(`0/contexts/0/targets/0/regions/${i}/end`, (pfn[k]! + 1n) * BigInt(OS_PAGE));
    });
    const stats = obj.map('fxh_ws_stats');
    const reports = () => Number(stats.lookup(Buffer.alloc(4))!.readBigUInt64LE(0));
    const idleBefore = idleCount(pfn);
    write('0/state', 'on');
    const on = Date.now();
    // One pass, long enough to hold the call. A pass clears the pages' accessed bits (and marks them
    // idle) first, sleeps, then checks them; it clears without flushing the TLB, so a page the call
    // touched before its clearing would keep a cached translation and never be seen (with 100 µs passes
    // a test lost runs of ~70 of 259 pages; with 30 ms passes, 1177 of 4100 at 16 MiB, whose clearing
    // outlasted a fixed settle). So the call waits until every page is marked idle (/proc/kpageflags),
    // i.e. the clearing is over, and must end well before the check.
    while (idleCount(pfn) < pages) {
      if (Date.now() - on > timing.timeoutMs) throw new Error(`DAMON marked ${idleCount(pfn)} of ${pages} pages idle within ${timing.timeoutMs} ms (${idleBefore} were before it started)`);
      await sleep(1);
    }
    const acc = obj.map('fxh_ws_acc');
    for (const k of acc.keys()) acc.delete(k);
    const before = reports();
    const c0 = process.hrtime.bigint();
    call();
    const callNs = Number(process.hrtime.bigint() - c0);
    const margin = timing.passMs / 4;
    if (reports() !== before || Date.now() - on > timing.passMs - margin) {
      throw new PassTooShort(`the call ended ${Date.now() - on} ms after DAMON started, too close to its check at ${timing.passMs} ms (the call took ${(callNs / 1e6).toFixed(1)} ms)`, 2 * (Date.now() - on) + margin);
    }
    const deadline = Date.now() + timing.passMs + timing.timeoutMs;
    while (reports() < before + pages) {
      if (Date.now() > deadline) throw new Error(`DAMON sent ${reports() - before} of ${pages} reports within ${timing.passMs + timing.timeoutMs} ms of the call`);
      await sleep(5);
    }
    const touchedBefore = idleBefore;
    write('0/state', 'off');
    const found = touched(acc, byFrame);
    const programNs = statsFd >= 0 ? progInfo(prog.fd).runTimeNs : null;
    rec = { pages: found, touchedBefore, callNs, reports: reports(), programNs };
  } finally {
    if (kdamond) {
      try {
        write('0/state', 'off');
      } catch {
        /* already off */
      }
      write('nr_kdamonds', 0);
    }
    link?.detach();
    obj.close();
    if (statsFd >= 0) fs.closeSync(statsFd);
  }
  return { ...rec, totalNs: Number(process.hrtime.bigint() - t0) };
}

function touched(acc: ReturnType<BpfObject['map']>, byFrame: Map<bigint, number>): number[] {
  const out = new Set<number>();
  for (const key of acc.keys()) {
    const v = acc.lookup(key);
    if (!v || v.readBigUInt64LE(8) === 0n) continue;
    for (let a = key.readBigUInt64LE(0); a < v.readBigUInt64LE(0); a += BigInt(OS_PAGE)) {
      const k = byFrame.get(a);
      if (k !== undefined) out.add(k);
    }
  }
  return [...out].sort((a, b) => a - b);
}

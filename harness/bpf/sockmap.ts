// The sockmap fast path of the platform: bpf/sockmap.bpf.c loaded and attached to one cgroup.
//
//   const sm = attachSockmap(cgroup)   // sock_ops -> cgroup (bpf_link), sk_msg -> SOCKHASH (bpf_link)
//   sm.stats()                          // { skMsgRunCount, sockOpsRunCount, mapEntries, redirected, ... }
//   sm.detach()                         // idempotent; also on exit/SIGINT/SIGTERM (libbpf.ts registry)
//
// Every attachment is fd-based (bpf_link): when this process dies, even by SIGKILL, the kernel
// detaches the programs and frees the map; only the cgroup directory can remain, and the next
// run's startupCleanup() removes it.
//
// Run counts: the kernel counts program runs (run_cnt in bpf_prog_info) only while BPF run-time
// statistics are on. We turn them on with BPF_ENABLE_STATS, the fd-scoped form of
// `kernel.bpf_stats_enabled=1` (the same static key, reference counted): they stay on while the
// handle is attached and go back to what they were when its fd closes — also when this process
// dies — without writing the sysctl, so concurrent runs cannot switch each other's statistics off.
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../paths.js';
import { BPF_ATTACH, BpfObject, bpfCapability, enableRunTimeStats, linkCreate, progAttach, progInfo, type AttachHandle, type BpfCapability, type BpfMap, type BpfProgram } from './libbpf.js';

export const SOCKMAP_OBJECT = path.join(repoRoot, 'bpf', 'build', 'sockmap.bpf.o');
export const PROG_SOCKOPS = 'fxh_sockops';
export const PROG_SKMSG = 'fxh_skmsg';
export const MAP_SOCKHASH = 'fxh_sockhash';
export const MAP_STATS = 'fxh_skstat';
export const MAP_SPLICE = 'fxh_splice';
export const STATS_SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

/** The sysctl's value (0/1), or null when it cannot be read. Note: BPF_ENABLE_STATS does not change what it reads. */
export function readStatsSysctl(): number | null {
  try {
    return Number(fs.readFileSync(STATS_SYSCTL, 'utf8').trim());
  } catch {
    return null;
  }
}

export interface SockmapStats {
  /** kernel run_cnt of fxh_skmsg since attach: one per sendmsg of a socket in the map */
  skMsgRunCount: number;
  /** kernel run_cnt of fxh_sockops since attach */
  sockOpsRunCount: number;
  /** sockets currently in the SOCKHASH */
  mapEntries: number;
  /** fxh_skstat counters (the program's own): runs, redirected (to the peer or spliced), passed (no peer), bytes, sockets inserted, spliced */
  runs: number;
  redirected: number;
  passed: number;
  bytes: number;
  inserted: number;
  spliced: number;
  splicedBytes: number;
  /** pairs of sockets joined in fxh_splice (two entries each) */
  spliceEntries: number;
  skMsgRunTimeNs: number;
}

export interface SockmapHandle {
  readonly cgroupPath: string;
  readonly progIds: { sockops: number; skmsg: number };
  /** how each program is attached */
  readonly attachments: string[];
  readonly detached: boolean;
  /** fds of the fxh_splice map and the SOCKHASH: handed to the gateway, which joins connections with them (splice-map.ts) */
  readonly spliceMapFd: number;
  readonly sockhashFd: number;
  stats(): SockmapStats;
  detach(): void;
}

export interface AttachOptions {
  /** the compiled object (default bpf/build/sockmap.bpf.o) */
  object?: string;
}

/** Whether the fast path can run here; the reason when not (not root, no libbpf, no bpf(), no object file). */
export function sockmapCapability(probe?: Parameters<typeof bpfCapability>[0]): BpfCapability {
  const c = bpfCapability(probe);
  if (!c.ok) return c;
  if (!fs.existsSync(SOCKMAP_OBJECT)) return { ok: false, reason: `${path.relative(repoRoot, SOCKMAP_OBJECT)} is not built (node bpf/build.mjs)` };
  return { ok: true };
}

/**
 * Loads bpf/sockmap.bpf.o and attaches it: fxh_sockops to the cgroup (fd or directory path),
 * fxh_skmsg to the SOCKHASH. Turns BPF run-time statistics on for as long as it is attached.
 */
export function attachSockmap(cgroup: { fd: number; path: string } | string, opts: AttachOptions = {}): SockmapHandle {
  const cg = typeof cgroup === 'string' ? { fd: fs.openSync(cgroup, 'r'), path: cgroup, own: true } : { ...cgroup, own: false };
  const handles: AttachHandle[] = [];
  let statsFd = -1;
  let obj: BpfObject | null = null;
  const release = () => {
    for (const h of handles.splice(0).reverse()) {
      try {
        h.detach();
      } catch {}
    }
    obj?.close();
    obj = null;
    if (statsFd >= 0) {
      try {
        fs.closeSync(statsFd);
      } catch {}
      statsFd = -1;
    }
    if (cg.own) {
      try {
        fs.closeSync(cg.fd);
      } catch {}
    }
  };
  try {
    statsFd = enableRunTimeStats();
    obj = BpfObject.open(opts.object ?? SOCKMAP_OBJECT).load();
    const sockops: BpfProgram = obj.program(PROG_SOCKOPS);
    const skmsg: BpfProgram = obj.program(PROG_SKMSG);
    const hash: BpfMap = obj.map(MAP_SOCKHASH);
    const counters: BpfMap = obj.map(MAP_STATS);
    const splice: BpfMap = obj.map(MAP_SPLICE);
    const attachments: string[] = [];
    // sk_msg first: a socket inserted by sock_ops must already find its verdict program
    try {
      handles.push(linkCreate(skmsg.fd, hash.fd, BPF_ATTACH.SK_MSG_VERDICT));
      attachments.push(`${PROG_SKMSG} -> ${MAP_SOCKHASH} (bpf_link, BPF_SK_MSG_VERDICT)`);
    } catch (e) {
      // kernels before 6.10 have no sockmap links: the legacy attachment dies with the map
      handles.push(progAttach(skmsg.fd, hash.fd, BPF_ATTACH.SK_MSG_VERDICT));
      attachments.push(`${PROG_SKMSG} -> ${MAP_SOCKHASH} (bpf_prog_attach, BPF_SK_MSG_VERDICT; no link: ${(e as Error).message})`);
    }
    handles.push(sockops.attachCgroup(cg.fd));
    attachments.push(`${PROG_SOCKOPS} -> ${cg.path} (bpf_link, BPF_CGROUP_SOCK_OPS)`);
    const ids = { sockops: progInfo(sockops.fd).id, skmsg: progInfo(skmsg.fd).id };
    const base = { sk: progInfo(skmsg.fd), so: progInfo(sockops.fd) };
    let detached = false;
    const sum = (b: Buffer | null) => {
      let t = 0n;
      if (b) for (let o = 0; o + 8 <= b.length; o += 8) t += b.readBigUInt64LE(o);
      return Number(t);
    };
    const key = (i: number) => {
      const k = Buffer.alloc(4);
      k.writeUInt32LE(i);
      return k;
    };
    return {
      cgroupPath: cg.path,
      progIds: ids,
      attachments,
      spliceMapFd: splice.fd,
      sockhashFd: hash.fd,
      get detached() {
        return detached;
      },
      stats(): SockmapStats {
        if (detached || !obj) throw new Error('sockmap is detached');
        const sk = progInfo(skmsg.fd);
        const so = progInfo(sockops.fd);
        const c = [0, 1, 2, 3, 4, 5, 6].map((i) => sum(counters.lookup(key(i))));
        return {
          skMsgRunCount: sk.runCount - base.sk.runCount,
          sockOpsRunCount: so.runCount - base.so.runCount,
          mapEntries: hash.keys().length,
          runs: c[0]!,
          redirected: c[1]!,
          passed: c[2]!,
          bytes: c[3]!,
          inserted: c[4]!,
          spliced: c[5]!,
          splicedBytes: c[6]!,
          spliceEntries: splice.keys().length / 2,
          skMsgRunTimeNs: sk.runTimeNs - base.sk.runTimeNs,
        };
      },
      detach() {
        if (detached) return;
        detached = true;
        release();
      },
    };
  } catch (e) {
    release();
    throw e;
  }
}

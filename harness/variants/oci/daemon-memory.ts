// Memory of an idle container run by a daemon: the container's processes, its shim (containerd-shim-runc-v2,
// the container init's parent), and a share of the daemon (dockerd and/or containerd), which is also reported
// on its own.
import { readFileSync, readdirSync } from 'node:fs';
import { descendantPids, parentPid, readProcessMemory } from '../../platform/proc-memory.js';
import type { DaemonHandle } from './daemon.js';

/** Memory of one idle instance, as /proc sees it. */
export interface InstanceMemory {
  rssBytes: number;
  pssBytes: number;
  method: string;
}

export interface DaemonInstanceMemory extends InstanceMemory {
  containerPssBytes: number;
  shimPssBytes: number;
  /** PSS of the daemon processes (not shims, not containers), all instances together */
  daemonPssBytes: number;
  daemonRssBytes: number;
}

export interface DaemonMemory {
  pids: number[];
  names: string[];
  pssBytes: number;
  rssBytes: number;
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** The daemon's own processes: the one the harness started and its non-shim descendants, or (a machine's own daemon) every dockerd/containerd. */
export function daemonMemory(h: DaemonHandle): DaemonMemory {
  let pids: number[];
  if (h.pid !== undefined) pids = [h.pid, ...descendantPids(h.pid)];
  else pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number);
  pids = pids.filter((p) => ['dockerd', 'containerd'].includes(comm(p)));
  let pss = 0;
  let rss = 0;
  for (const p of pids) {
    try {
      const m = readProcessMemory(p);
      pss += m.pssBytes;
      rss += m.rssBytes;
    } catch {
      /* gone */
    }
  }
  return { pids, names: pids.map(comm), pssBytes: pss, rssBytes: rss };
}

/** One instance: container processes + its shim + daemon ÷ `alive` (the instances alive together). */
export function instanceMemory(initPid: number, daemon: DaemonMemory, alive: number, runtime: string): DaemonInstanceMemory {
  if (!(initPid > 0)) throw new Error(`${runtime}: the container has no pid (not running)`);
  let cPss = 0;
  let cRss = 0;
  for (const p of [initPid, ...descendantPids(initPid)]) {
    const m = readProcessMemory(p);
    cPss += m.pssBytes;
    cRss += m.rssBytes;
  }
  const shim = parentPid(initPid);
  const shimMem = shim !== undefined && comm(shim).startsWith('containerd-shim') ? readProcessMemory(shim) : { pssBytes: 0, rssBytes: 0 };
  const share = daemon.pssBytes / alive;
  const MiB = (b: number): string => (b / 2 ** 20).toFixed(1);
  return {
    pssBytes: cPss + shimMem.pssBytes + share,
    rssBytes: cRss + shimMem.rssBytes + daemon.rssBytes / alive,
    containerPssBytes: cPss,
    shimPssBytes: shimMem.pssBytes,
    daemonPssBytes: daemon.pssBytes,
    daemonRssBytes: daemon.rssBytes,
    method:
      `${runtime}: PSS/RSS of the container's processes (/fx --serve) + its containerd-shim-runc-v2 + 1/${alive} of the daemon ` +
      `(${daemon.names.join(' + ') || 'none found'}: PSS ${MiB(daemon.pssBytes)} MiB, RSS ${MiB(daemon.rssBytes)} MiB, with ${alive} idle containers), ` +
      `/proc/<pid>/smaps_rollup; first instance: container ${MiB(cPss)} MiB, shim ${MiB(shimMem.pssBytes)} MiB PSS`,
  };
}

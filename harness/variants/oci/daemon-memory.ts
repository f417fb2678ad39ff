// Memory of idle containers run by a daemon, for the density experiment (IdleInstances.memory): the
// containers cannot be put in the experiment's cell (the daemon makes them, not us), so the side is read
// here: each container's own memory cgroup (kernel memory included, as a cell's usage would be), plus
// PSS of its shim (containerd-shim-runc-v2, the init's parent, which lives in the daemon's cgroup, not the
// container's) and of any client holding its stdio (`ctr run`), plus the daemon once (dockerd and/or
// containerd), the side's fixed cost, also reported apart.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { descendantPids, parentPid, readProcessMemory } from '../../platform/proc-memory.js';
import type { IdleMemory } from '../../platform/variant.js';
import type { DaemonHandle } from './daemon.js';

export interface DaemonMemory {
  pids: number[];
  names: string[];
  pssBytes: number;
  rssBytes: number;
}

/** One idle container: the pid of its init (/fx --serve), and of a client process holding it, if any. */
export interface IdleContainer {
  initPid: number;
  clientPid?: number;
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

/** The memory cgroup directory of `pid` (v1 `memory` line, else the v2 one), or undefined. */
export function memoryCgroupOf(pid: number): { dir: string; kind: 'v1' | 'v2' } | undefined {
  let lines: string[];
  try {
    lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
  } catch {
    return undefined;
  }
  for (const l of lines) {
    const [, ctrls, p] = l.split(':', 3) as [string, string | undefined, string | undefined];
    if (ctrls?.split(',').includes('memory') && p !== undefined) return { dir: join('/sys/fs/cgroup/memory', p), kind: 'v1' };
  }
  for (const l of lines) {
    const [, ctrls, p] = l.split(':', 3) as [string, string | undefined, string | undefined];
    if (ctrls !== '' || p === undefined) continue;
    for (const base of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
      try {
        readFileSync(join(base, p, 'memory.current'));
        return { dir: join(base, p), kind: 'v2' };
      } catch {
        /* next */
      }
    }
  }
  return undefined;
}

function cgroupNumbers(cg: { dir: string; kind: 'v1' | 'v2' }): { usage: number; kernel: number | undefined } {
  const num = (f: string): number => Number(readFileSync(join(cg.dir, f), 'utf8').trim());
  if (cg.kind === 'v1') {
    const usage = num('memory.usage_in_bytes');
    let kernel: number | undefined;
    try {
      kernel = num('memory.kmem.usage_in_bytes');
    } catch {
      /* no kmem accounting */
    }
    return { usage, kernel: kernel !== undefined && Number.isFinite(kernel) ? kernel : undefined };
  }
  const m = /^kernel (\d+)$/m.exec(readFileSync(join(cg.dir, 'memory.stat'), 'utf8'));
  return { usage: num('memory.current'), kernel: m ? Number(m[1]) : undefined };
}

const MiB = (b: number): string => (b / 2 ** 20).toFixed(1);

/**
 * The side: daemon once + for each container its cgroup usage, its shim's and its client's PSS. Throws
 * when a container has no memory cgroup of its own to read (it would be counted as nothing).
 */
export function sideMemory(daemon: DaemonHandle, containers: readonly IdleContainer[], runtime: string): IdleMemory {
  const d = daemonMemory(daemon);
  let bytes = d.pssBytes;
  let kernel: number | undefined;
  let pss = d.pssBytes;
  let rss = d.rssBytes;
  let processes = d.pids.length;
  let cgSum = 0;
  let shimSum = 0;
  let clientSum = 0;
  const seenShims = new Set<number>();
  for (const c of containers) {
    const cg = memoryCgroupOf(c.initPid);
    const own = memoryCgroupOf(process.pid);
    if (!cg || cg.dir === own?.dir) throw new Error(`${runtime}: container init ${c.initPid} has no memory cgroup of its own (${cg?.dir ?? 'none'})`);
    const n = cgroupNumbers(cg);
    bytes += n.usage;
    cgSum += n.usage;
    if (n.kernel !== undefined) kernel = (kernel ?? 0) + n.kernel;
    for (const p of [c.initPid, ...descendantPids(c.initPid)]) {
      const m = readProcessMemory(p);
      pss += m.pssBytes;
      rss += m.rssBytes;
      processes++;
    }
    // the shim and the client: charged to the daemon's or our cgroup, not the container's, so added by PSS
    const shim = parentPid(c.initPid);
    const extra = [shim !== undefined && comm(shim).startsWith('containerd-shim') && !seenShims.has(shim) ? shim : undefined, c.clientPid];
    if (shim !== undefined) seenShims.add(shim);
    extra.forEach((p, i) => {
      if (p === undefined) return;
      const m = readProcessMemory(p);
      bytes += m.pssBytes;
      pss += m.pssBytes;
      rss += m.rssBytes;
      processes++;
      if (i === 0) shimSum += m.pssBytes;
      else clientSum += m.pssBytes;
    });
  }
  const label = d.names.length ? [...new Set(d.names)].join(' + ') : `${runtime} daemon (none found)`;
  const n = containers.length;
  return {
    bytes,
    ...(kernel !== undefined ? { kernelBytes: kernel } : {}),
    pssBytes: pss,
    rssBytes: rss,
    processes,
    shared: { bytes: d.pssBytes, label },
    method:
      `${runtime}: daemon once (${label}, PSS from /proc/<pid>/smaps_rollup) + per container its own memory cgroup's usage ` +
      `(kernel memory included) + PSS of its containerd-shim${clientSum > 0 ? ' and of the `ctr run` client holding its stdio' : ''}` +
      (n > 0
        ? `; at N = ${n}: daemon ${MiB(d.pssBytes)} MiB, containers' cgroups ${MiB(cgSum / n)} MiB, shim ${MiB(shimSum / n)} MiB${clientSum > 0 ? `, client ${MiB(clientSum / n)} MiB` : ''} per instance`
        : ''),
  };
}

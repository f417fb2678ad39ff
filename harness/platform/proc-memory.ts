// Memory of live processes, read from /proc (Linux only).
import { readFileSync, readdirSync } from 'node:fs';

export interface ProcessMemory {
  rssBytes: number;
  /** NaN when the kernel offers no smaps_rollup (see `source`) */
  pssBytes: number;
  /** which file the numbers came from */
  source: 'smaps_rollup' | 'status';
}

function kbField(text: string, field: string): number | undefined {
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
  return m ? Number(m[1]) * 1024 : undefined;
}

/**
 * RSS and PSS of one process from /proc/<pid>/smaps_rollup. When that file is missing
 * (kernels < 4.14, or no permission) falls back to VmRSS from /proc/<pid>/status and
 * reports pssBytes = NaN with source 'status'. Throws when the process does not exist.
 */
export function readProcessMemory(pid: number): ProcessMemory {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const rss = kbField(text, 'Rss');
    const pss = kbField(text, 'Pss');
    if (rss !== undefined && pss !== undefined) return { rssBytes: rss, pssBytes: pss, source: 'smaps_rollup' };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') throw new Error(`process ${pid} does not exist`);
    // fall through to status
  }
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    throw new Error(`process ${pid} does not exist (no /proc/${pid}/status)`);
  }
  // kernel threads and zombies have no VmRSS: count 0
  return { rssBytes: kbField(status, 'VmRSS') ?? 0, pssBytes: Number.NaN, source: 'status' };
}

/** Parent pid of `pid` from /proc/<pid>/stat, or undefined if it is gone. */
export function parentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parentheses: fields start after the last ')'
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(rest[1]);
    return Number.isFinite(ppid) ? ppid : undefined;
  } catch {
    return undefined;
  }
}

/** Every live descendant of `pid` (children, grandchildren, ...), not `pid` itself; from /proc/*\/stat. */
export function descendantPids(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = Number(name);
    const pp = parentPid(p);
    if (pp === undefined) continue;
    const list = children.get(pp);
    if (list) list.push(p);
    else children.set(pp, [p]);
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    for (const c of children.get(p) ?? []) {
      out.push(c);
      stack.push(c);
    }
  }
  return out.sort((a, b) => a - b);
}

/** Whether a process with this pid exists (zombies count as existing). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Sum of the memory of several processes; PSS is NaN if any of them lacked it. */
export function sumProcessMemory(pids: readonly number[]): { rssBytes: number; pssBytes: number; source: string } {
  let rss = 0;
  let pss = 0;
  const sources = new Set<string>();
  for (const p of pids) {
    const m = readProcessMemory(p);
    rss += m.rssBytes;
    pss += m.pssBytes;
    sources.add(m.source);
  }
  return { rssBytes: rss, pssBytes: pss, source: [...sources].join('+') || 'none' };
}

// CPU affinity of the measuring process. On a VM, a wake-up across vCPUs costs tens of µs
// (an IPI and a halted vCPU), so where the client runs is part of what a latency number means.
import { spawnSync } from 'node:child_process';

function taskset(args: string[]): string {
  for (let attempt = 0; ; attempt++) {
    const r = spawnSync('taskset', args, { encoding: 'utf8' });
    if (r.status === 0) return r.stdout.trim();
    // -a walks the threads: one that exits meanwhile (a terminated worker) is not an error
    if (attempt < 5 && /No such process/.test(r.stderr ?? '')) continue;
    throw new Error(`taskset ${args.join(' ')}: ${(r.stderr || r.error?.message || '').trim()}`);
  }
}

/** The CPU list this process may run on, e.g. "0,1". */
export function currentCpus(): string {
  return taskset(['-c', '-p', String(process.pid)]).split(':').pop()!.trim();
}

/** Runs `fn` with every thread of this process pinned to `cpus`, then restores the old affinity. */
export async function withAffinity<T>(cpus: string | undefined, fn: () => Promise<T>): Promise<T> {
  if (!cpus) return fn();
  const before = currentCpus();
  taskset(['-a', '-c', '-p', cpus, String(process.pid)]);
  try {
    return await fn();
  } finally {
    taskset(['-a', '-c', '-p', before, String(process.pid)]);
  }
}

/** The CPUs of a list like "0-2,5" in order: [0, 1, 2, 5]. */
export function expandCpus(list: string): number[] {
  const out: number[] = [];
  for (const part of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`bad CPU list "${list}"`);
    for (let c = Number(m[1]); c <= Number(m[2] ?? m[1]); c++) out.push(c);
  }
  return out;
}

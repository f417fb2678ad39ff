// Processes found by what their command line names. A function's process (WASM cold-process, a
// native binary) started by a thread or a process that was killed for overrunning its timeout has
// no one left to kill it: it names its owner's scratch folder on its command line, so the owner's
// killer finds it there.
import fs from 'node:fs';

/** pids (other than this process) whose command line contains `fragment` */
export function processesNaming(fragment: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(fragment)) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** SIGKILLs every process whose command line contains `fragment`; returns their pids. */
export function killProcessesNaming(fragment: string): number[] {
  const pids = processesNaming(fragment);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

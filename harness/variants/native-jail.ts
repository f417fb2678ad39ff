// What the native variant puts around a function process when the harness runs as root: another user
// (nobody, 65534, no supplementary groups: so no capabilities after exec) and a cgroup of its own with the
// container's limits (memory, pids). Node cannot spawn into a cgroup, so the process is moved there right
// after spawn(): its first instructions can run before the limits apply (RLIMIT_AS does apply from the start).
import { mkdirSync, readFileSync, rmdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

export const NOBODY = 65534;
const PIDS_LIMIT = 64; // the container bundle's

export interface Jail {
  uid?: number;
  gid?: number;
  /** created per process; undefined when no cgroup could be made (not root) */
  cgroup?: (tag: string) => ProcessCgroup | undefined;
  describe: string;
}

export interface ProcessCgroup {
  add(pid: number): void;
  remove(): void;
}

let n = 0;

function v1Base(ctl: string): string | undefined {
  const d = join('/sys/fs/cgroup', ctl);
  return existsSync(join(d, 'cgroup.procs')) ? d : undefined;
}

/** A cgroup with `memoryBytes` and the pids limit, in cgroup v1 memory+pids, else cgroup v2. */
export function makeCgroup(name: string, memoryBytes: number): ProcessCgroup {
  const dirs: string[] = [];
  const mem = v1Base('memory');
  const pids = v1Base('pids');
  try {
    if (mem && pids) {
      const m = join(mem, name);
      mkdirSync(m);
      dirs.push(m);
      writeFileSync(join(m, 'memory.limit_in_bytes'), String(memoryBytes));
      try {
        writeFileSync(join(m, 'memory.memsw.limit_in_bytes'), String(memoryBytes));
      } catch {
        /* no swap accounting */
      }
      const p = join(pids, name);
      mkdirSync(p);
      dirs.push(p);
      writeFileSync(join(p, 'pids.max'), String(PIDS_LIMIT));
    } else {
      // a fresh cgroup2 root (no systemd) delegates no controller: without memory and pids in its
      // subtree_control a child has no memory.max to write
      const ctl = '/sys/fs/cgroup/cgroup.subtree_control';
      const on = readFileSync(ctl, 'utf8');
      if (!/\bmemory\b/.test(on) || !/\bpids\b/.test(on)) writeFileSync(ctl, '+memory +pids');
      const d = join('/sys/fs/cgroup', name);
      mkdirSync(d);
      dirs.push(d);
      writeFileSync(join(d, 'memory.max'), String(memoryBytes));
      writeFileSync(join(d, 'pids.max'), String(PIDS_LIMIT));
    }
  } catch (e) {
    for (const d of dirs.reverse()) rmdirSync(d);
    throw e;
  }
  return {
    add(pid) {
      for (const d of dirs) writeFileSync(join(d, 'cgroup.procs'), String(pid));
    },
    remove() {
      // its processes have been reaped; a process that is still exiting holds the cgroup a moment longer
      const attempt = (left: number): void => {
        for (const d of [...dirs]) {
          try {
            rmdirSync(d);
            dirs.splice(dirs.indexOf(d), 1);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === 'ENOENT') dirs.splice(dirs.indexOf(d), 1);
          }
        }
        if (dirs.length && left > 0) setTimeout(() => attempt(left - 1), 20);
      };
      attempt(100);
    },
  };
}

/** The jail of this process's native functions: unprivileged + own cgroup as root, nothing otherwise. */
export function nativeJail(memoryLimitMiB: number): Jail {
  if ((process.getuid?.() ?? 1) !== 0) return { describe: 'as the harness user (not root: no other user, no cgroup)' };
  const user = `as uid/gid ${NOBODY} (nobody, no supplementary groups, no capabilities)`;
  // `ip netns exec` (a node in a network namespace) mounts a fresh /sys without the cgroup file systems
  if (!((v1Base('memory') && v1Base('pids')) || existsSync('/sys/fs/cgroup/cgroup.controllers'))) {
    return { uid: NOBODY, gid: NOBODY, describe: `${user}, without a cgroup (no cgroup file system is mounted here: the memory limit is RLIMIT_AS alone)` };
  }
  return {
    uid: NOBODY,
    gid: NOBODY,
    cgroup: (tag) => makeCgroup(`fxh-native-${process.pid}-${++n}-${tag}`.slice(0, 100), memoryLimitMiB * 1024 * 1024),
    describe: `${user}, each process in a cgroup of its own (memory ${memoryLimitMiB} MiB, pids ${PIDS_LIMIT})`,
  };
}

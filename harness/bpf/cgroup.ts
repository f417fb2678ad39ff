// The platform's own cgroups v2 (under /sys/fs/cgroup/unified, the v2 half of this hybrid layout).
//
// A cgroup is created, owned and removed by harness/bpf/libbpf.ts (createCgroup: fxh-<pid>-<name>,
// in its registry, removed on exit, SIGINT, SIGTERM and uncaught exceptions, moving its processes
// back to the parent first). This module adds what the sockmap fast path needs on top:
//   - spawnInCgroup: start a process that is IN the cgroup before its program runs, so every socket
//     it (and its children) create is born there — sock_ops programs see only those sockets;
//   - inspection (which cgroup a process is in, which fxh cgroups exist);
//   - startupCleanup: what an earlier crashed run left behind, removed and reported.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CGROUP2_ROOT, cleanupStale, createCgroup, type Cgroup, type StaleOptions } from './libbpf.js';

export type { Cgroup };
export { CGROUP2_ROOT };

/** Whether a cgroup v2 hierarchy we can create children in is mounted at `root`. */
export function cgroup2Available(root: string = CGROUP2_ROOT): { ok: true } | { ok: false; reason: string } {
  if (!fs.existsSync(path.join(root, 'cgroup.procs'))) return { ok: false, reason: `no cgroup v2 hierarchy at ${root}` };
  try {
    fs.accessSync(root, fs.constants.W_OK);
  } catch {
    return { ok: false, reason: `cannot create cgroups under ${root} (not root)` };
  }
  return { ok: true };
}

/** A new cgroup /sys/fs/cgroup/unified/fxh-<pid>-<name>, removed with its attachments on detach() or exit. */
export function platformCgroup(name: string, root: string = CGROUP2_ROOT): Cgroup {
  return createCgroup(name, root);
}

/**
 * Spawns `command args` already inside the cgroup at `cgroupPath`: a shell writes its own pid to
 * cgroup.procs and then execs the command, so the process is in the cgroup before the command's
 * first instruction (moving a pid in after spawn would race with the sockets it opens at start-up).
 * Children it forks later are born in the same cgroup.
 */
export function spawnInCgroup(cgroupPath: string, command: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  const script = 'echo $$ > "$0/cgroup.procs" || exit 125; exec "$@"';
  return spawn('/bin/sh', ['-c', script, cgroupPath, command, ...args], opts);
}

/** The cgroup v2 path of a process relative to the v2 root, e.g. "/fxh-123-sockmap" ("/" for the root). */
export function cgroupOf(pid: number | 'self' = 'self'): string {
  const text = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  const line = text.split('\n').find((l) => l.startsWith('0::'));
  return line ? line.slice(3) : '/';
}

/** The pids in a cgroup. */
export function cgroupProcs(cgroupPath: string): number[] {
  try {
    return fs.readFileSync(path.join(cgroupPath, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Every fxh-* cgroup directly under the v2 root (any pid, ours included). */
export function fxhCgroups(root: string = CGROUP2_ROOT): string[] {
  try {
    return fs.readdirSync(root).filter((n) => n.startsWith('fxh-') && fs.statSync(path.join(root, n)).isDirectory()).map((n) => path.join(root, n));
  } catch {
    return [];
  }
}

/**
 * Removes what crashed runs left (fxh-<dead pid>-* cgroups, and pins) and returns one line per
 * thing removed, for the run's notes: "the next run cleans up what an earlier crash left, and says so".
 */
export function startupCleanup(opts: StaleOptions = {}): string[] {
  return cleanupStale(opts);
}

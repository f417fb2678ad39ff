// Pins under /sys/fs/bpf/fxh-<pid>-*, cgroups of our own, and the removal of stale ones.
import fs from 'node:fs';
import path from 'node:path';
import { BPFFS, CGROUP2_ROOT, NAME_PREFIX } from './consts.js';
import { L, check } from './ffi.js';
import { ensureBpffs } from './mounts.js';
import { AttachHandle, Handle } from './registry.js';
import { pidAlive } from '../../platform/proc-memory.js';

function ownName(suffix: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(suffix)) throw new Error(`bad name suffix ${JSON.stringify(suffix)} (use [A-Za-z0-9_.-])`);
  return `${NAME_PREFIX}-${process.pid}-${suffix}`;
}

/** /sys/fs/bpf/fxh-<pid>-<suffix>: the only place this process pins. */
export function pinPath(suffix: string): string {
  return path.join(BPFFS, ownName(suffix));
}

/** Pins any bpf fd (map, program, link) at pinPath(suffix); detach() unlinks it. */
export function pinFd(fd: number, suffix: string): AttachHandle & { path: string } {
  const p = pinPath(suffix);
  ensureBpffs();
  check(`bpf_obj_pin ${p}`, L().bpf_obj_pin(fd, p));
  const h = new Handle(`pin ${p}`, 2, () => fs.rmSync(p, { force: true }));
  return Object.assign(h, { path: p });
}

export interface Cgroup extends AttachHandle {
  readonly path: string;
  /** an O_RDONLY fd of the cgroup directory, for attach calls */
  readonly fd: number;
  /** moves a process into this cgroup */
  addProcess(pid: number): void;
}

/** Creates /sys/fs/cgroup/unified/fxh-<pid>-<suffix>; detach() moves its processes back to the root and removes it. */
export function createCgroup(suffix: string, root: string = CGROUP2_ROOT): Cgroup {
  const dir = path.join(root, ownName(suffix));
  fs.mkdirSync(dir);
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch (e) {
    fs.rmdirSync(dir);
    throw e;
  }
  const h = new Handle(`cgroup ${dir}`, 3, () => {
    try {
      fs.closeSync(fd);
    } catch {}
    emptyCgroup(dir, root);
    fs.rmdirSync(dir);
  });
  return Object.assign(h, {
    path: dir,
    fd,
    addProcess(pid: number): void {
      fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
    },
  });
}

function emptyCgroup(dir: string, root: string): void {
  let procs: string[] = [];
  try {
    procs = fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
  } catch {
    return;
  }
  for (const pid of procs) {
    try {
      fs.writeFileSync(path.join(root, 'cgroup.procs'), pid);
    } catch {}
  }
}

export interface StaleOptions {
  bpffs?: string;
  cgroupRoot?: string;
  isAlive?: (pid: number) => boolean;
}

/**
 * Removes pins /sys/fs/bpf/fxh-<pid>-* and cgroups /sys/fs/cgroup/unified/fxh-<pid>-* whose pid is
 * dead (a crashed run). Returns one line per thing removed or that could not be removed.
 */
export function cleanupStale(opts: StaleOptions = {}): string[] {
  const bpffs = opts.bpffs ?? BPFFS;
  const cgRoot = opts.cgroupRoot ?? CGROUP2_ROOT;
  const alive = opts.isAlive ?? pidAlive;
  const report: string[] = [];
  const stale = (name: string): number | null => {
    const m = /^fxh-(\d+)-/.exec(name);
    if (!m) return null;
    const pid = Number(m[1]);
    return pid !== process.pid && !alive(pid) ? pid : null;
  };
  for (const name of safeReaddir(bpffs)) {
    const pid = stale(name);
    if (pid === null) continue;
    const p = path.join(bpffs, name);
    try {
      fs.rmSync(p, { recursive: true, force: true });
      report.push(`removed stale pin ${p} (pid ${pid} is gone)`);
    } catch (e) {
      report.push(`could not remove stale pin ${p}: ${(e as Error).message}`);
    }
  }
  for (const name of safeReaddir(cgRoot)) {
    const pid = stale(name);
    if (pid === null) continue;
    const p = path.join(cgRoot, name);
    try {
      if (!fs.statSync(p).isDirectory()) continue;
      emptyCgroup(p, cgRoot);
      fs.rmdirSync(p); // detaches the programs attached to it (bpf_prog_attach or links) as the cgroup dies
      report.push(`removed stale cgroup ${p} (pid ${pid} is gone)`);
    } catch (e) {
      report.push(`could not remove stale cgroup ${p}: ${(e as Error).message}`);
    }
  }
  return report;
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}


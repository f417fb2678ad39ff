// A memory cgroup of our own (fxh-<pid>-<name>), to read what a group of processes costs the kernel
// (page tables, kernel stacks, slab: memory.usage_in_bytes counts them, /proc's PSS does not) and to
// cap it. cgroup v1 (a `memory` hierarchy, e.g. /sys/fs/cgroup/memory on a hybrid layout) or v2 (a
// hierarchy whose cgroup.controllers lists memory), whichever this machine has.
// v1: created under this process's own memory cgroup, so any limit above it still applies.
// v2: created at the hierarchy's root (a child of a cgroup holding processes cannot take controllers).
// Removed (its processes killed) by remove(), and on exit / uncaught exceptions; a crashed run's
// leftovers by removeStaleMemoryCgroups().
import fs from 'node:fs';
import path from 'node:path';
import { pidAlive } from './proc-memory.js';

export interface MemoryCgroupLayout {
  kind: 'v1' | 'v2';
  /** where new cgroups are made */
  parent: string;
  /** the hierarchy's mount point */
  mount: string;
}

const V1_MOUNT = '/sys/fs/cgroup/memory';
const V2_MOUNTS = ['/sys/fs/cgroup', '/sys/fs/cgroup/unified'];

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** The memory cgroup layout of this machine, or why there is none we can use. */
export function memoryCgroupLayout(): { ok: true; layout: MemoryCgroupLayout } | { ok: false; reason: string } {
  let layout: MemoryCgroupLayout | undefined;
  if (fs.existsSync(path.join(V1_MOUNT, 'memory.usage_in_bytes'))) {
    const own = (read('/proc/self/cgroup') ?? '').split('\n').map((l) => l.split(':')).find((f) => f.length >= 3 && f[1]!.split(',').includes('memory'));
    layout = { kind: 'v1', mount: V1_MOUNT, parent: path.join(V1_MOUNT, own ? f3(own) : '/') };
  } else {
    const m = V2_MOUNTS.find((d) => (read(path.join(d, 'cgroup.controllers')) ?? '').split(/\s+/).includes('memory'));
    if (m) layout = { kind: 'v2', mount: m, parent: m };
  }
  if (!layout) {
    return { ok: false, reason: `no cgroup memory controller: no ${V1_MOUNT}/memory.usage_in_bytes (v1) and no memory in cgroup.controllers of ${V2_MOUNTS.join(' or ')} (v2)` };
  }
  try {
    fs.accessSync(layout.parent, fs.constants.W_OK);
  } catch {
    return { ok: false, reason: `cannot create memory cgroups under ${layout.parent} (needs root)` };
  }
  return { ok: true, layout };
}

function f3(fields: string[]): string {
  return fields.slice(2).join(':');
}

function stat(text: string | undefined, key: string): number | undefined {
  const m = text && new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

const live = new Set<MemoryCgroup>();
let counter = 0;
let hooked = false;

export class MemoryCgroup {
  readonly dir: string;
  readonly kind: 'v1' | 'v2';
  private removed = false;

  private constructor(layout: MemoryCgroupLayout, name: string) {
    this.kind = layout.kind;
    this.dir = path.join(layout.parent, name);
  }

  /** fxh-<pid>-<prefix>-<n>, with a memory limit when `limitBytes` is given. Throws with the reason when it cannot. */
  static create(prefix: string, limitBytes?: number): MemoryCgroup {
    if (!/^[A-Za-z0-9_.-]+$/.test(prefix)) throw new Error(`bad cgroup name ${JSON.stringify(prefix)}`);
    const l = memoryCgroupLayout();
    if (!l.ok) throw new Error(l.reason);
    if (l.layout.kind === 'v2') {
      // the root's children get the memory controller only through its subtree_control
      try {
        fs.writeFileSync(path.join(l.layout.parent, 'cgroup.subtree_control'), '+memory');
      } catch {
        /* already on, or refused: the files we read will say */
      }
    }
    const cg = new MemoryCgroup(l.layout, `fxh-${process.pid}-${prefix}-${++counter}`);
    fs.mkdirSync(cg.dir);
    live.add(cg);
    hookExit();
    if (limitBytes !== undefined) {
      try {
        fs.writeFileSync(cg.file(cg.kind === 'v1' ? 'memory.limit_in_bytes' : 'memory.max'), String(Math.floor(limitBytes)));
      } catch (e) {
        cg.remove();
        throw new Error(`cannot set the memory limit of ${cg.dir}: ${(e as Error).message}`);
      }
    }
    return cg;
  }

  private file(name: string): string {
    return path.join(this.dir, name);
  }

  /** The usage file (v1 memory.usage_in_bytes: user + kernel memory charged here, page cache included; v2 memory.current). */
  usageFile(): string {
    return this.file(this.kind === 'v1' ? 'memory.usage_in_bytes' : 'memory.current');
  }

  usageBytes(): number {
    const t = read(this.usageFile())?.trim();
    if (!t || !Number.isFinite(Number(t))) throw new Error(`cannot read ${this.usageFile()}`);
    return Number(t);
  }

  /** Kernel memory in the usage (v1 memory.kmem.usage_in_bytes, v2 `kernel` of memory.stat), if the kernel says. */
  kernelBytes(): number | undefined {
    if (this.kind === 'v1') {
      const n = Number((read(this.file('memory.kmem.usage_in_bytes')) ?? '').trim());
      return Number.isFinite(n) && n > 0 ? n : undefined;
    }
    return stat(read(this.file('memory.stat')), 'kernel');
  }

  /** Highest usage seen (v1 memory.max_usage_in_bytes, v2 memory.peak). */
  peakBytes(): number | undefined {
    const n = Number((read(this.file(this.kind === 'v1' ? 'memory.max_usage_in_bytes' : 'memory.peak')) ?? '').trim());
    return Number.isFinite(n) && n > 0 ? n : undefined;
  }

  /** Times the limit was hit (v1 memory.failcnt, v2 `max` of memory.events). */
  failCount(): number {
    if (this.kind === 'v1') return Number((read(this.file('memory.failcnt')) ?? '0').trim()) || 0;
    return stat(read(this.file('memory.events')), 'max') ?? 0;
  }

  /** Processes the OOM killer killed here (`oom_kill` of v1 memory.oom_control, v2 memory.events). */
  oomKills(): number {
    return stat(read(this.file(this.kind === 'v1' ? 'memory.oom_control' : 'memory.events')), 'oom_kill') ?? 0;
  }

  /** Every process in this cgroup and the cgroups below it. */
  pids(): number[] {
    const out: number[] = [];
    for (const d of this.dirs()) {
      for (const l of (read(path.join(d, 'cgroup.procs')) ?? '').split('\n')) if (l) out.push(Number(l));
    }
    return out;
  }

  /** this cgroup and its descendants, deepest first */
  private dirs(): string[] {
    const out: string[] = [];
    const walk = (d: string): void => {
      let entries: fs.Dirent[] = [];
      try {
        entries = fs.readdirSync(d, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) if (e.isDirectory()) walk(path.join(d, e.name));
      out.push(d);
    };
    walk(this.dir);
    return out;
  }

  /** `command args` through a shell that joins this cgroup and then execs it: the process is inside from its first instruction. */
  wrap(command: string, args: readonly string[]): { command: string; args: string[] } {
    return { command: '/bin/sh', args: ['-c', 'echo $$ > "$0/cgroup.procs" || exit 125; exec "$@"', this.dir, command, ...args] };
  }

  get exists(): boolean {
    return fs.existsSync(this.dir);
  }

  /** SIGKILLs what is still inside, waits for it to leave (up to `waitMs`), removes the directories. Safe twice; throws if it cannot. */
  remove(waitMs = 3000): void {
    if (this.removed) return;
    killAndRemove(this.dir, () => this.pids(), () => this.dirs(), waitMs);
    this.removed = true;
    live.delete(this);
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function killAndRemove(dir: string, pids: () => number[], dirs: () => string[], waitMs: number): void {
  const until = Date.now() + waitMs;
  for (;;) {
    const left = pids();
    for (const p of left) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (left.length === 0) {
      let failed: Error | undefined;
      for (const d of dirs()) {
        try {
          fs.rmdirSync(d);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') failed = e as Error;
        }
      }
      if (!failed) return;
      if (Date.now() > until) throw new Error(`cannot remove cgroup ${dir}: ${failed.message}`);
    } else if (Date.now() > until) {
      throw new Error(`cannot remove cgroup ${dir}: processes ${left.join(', ')} did not leave within ${waitMs} ms`);
    }
    sleepSync(10);
  }
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  const removeAll = (): void => {
    for (const cg of [...live]) {
      try {
        cg.remove(1000);
      } catch {
        /* the next run removes it and says so */
      }
    }
  };
  process.on('exit', removeAll);
  process.on('uncaughtException', (e) => {
    removeAll();
    throw e;
  });
}

/**
 * Removes memory cgroups fxh-<pid>-<prefix>-* of dead pids (a crashed run), anywhere up to 6 levels
 * below the hierarchy; one line per cgroup removed or not removable.
 */
export function removeStaleMemoryCgroups(prefix: string, isAlive: (pid: number) => boolean = pidAlive): string[] {
  const l = memoryCgroupLayout();
  if (!l.ok) return [];
  const re = new RegExp(`^fxh-(\\d+)-${prefix.replace(/[.]/g, '\\.')}-\\d+$`);
  const found: { dir: string; pid: number }[] = [];
  const walk = (d: string, depth: number): void => {
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const m = re.exec(e.name);
      if (m) {
        const pid = Number(m[1]);
        if (pid !== process.pid && !isAlive(pid)) found.push({ dir: path.join(d, e.name), pid });
      } else if (depth < 6) walk(path.join(d, e.name), depth + 1);
    }
  };
  walk(l.layout.mount, 0);
  return found.map(({ dir, pid }) => {
    const sub = (): string[] => {
      const out: string[] = [];
      const w = (x: string): void => {
        for (const e of fs.readdirSync(x, { withFileTypes: true })) if (e.isDirectory()) w(path.join(x, e.name));
        out.push(x);
      };
      try {
        w(dir);
      } catch {
        /* gone */
      }
      return out;
    };
    const procs = (): number[] => sub().flatMap((d) => (read(path.join(d, 'cgroup.procs')) ?? '').split('\n').filter(Boolean).map(Number));
    try {
      killAndRemove(dir, procs, sub, 2000);
      return `removed stale memory cgroup ${dir} (pid ${pid} is gone)`;
    } catch (e) {
      return `could not remove stale memory cgroup ${dir}: ${(e as Error).message}`;
    }
  });
}

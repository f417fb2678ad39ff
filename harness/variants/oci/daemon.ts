// The container daemons behind the `docker` and `containerd` variants. A daemon that already runs on the
// machine is used and left alone. Otherwise the harness starts one of its own in /tmp/fxh-<kind>/ (data
// root, state, socket, log), shared by every harness process of the run through lease files
// (<dir>/leases/<pid>-<n>); the last lease released stops it and removes the folder. A daemon whose lease
// holders all died (a SIGKILLed run) is stopped by the next acquirer, which says so.
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, rmSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pidAlive } from '../../platform/proc-memory.js';
import { findInPath as findBinary } from './runtime.js';
import { addRunNote } from '../../platform/run-notes.js';

export type DaemonKind = 'dockerd' | 'containerd';

export interface DaemonHandle {
  kind: DaemonKind;
  /** the API socket (a path) */
  socket: string;
  /** false: a daemon the machine already ran */
  startedByUs: boolean;
  /** one line for the run's notes */
  description: string;
  /** pid of the daemon itself, when known */
  pid?: number;
  /** Gives up this lease; the last one stops a daemon the harness started. Safe to call twice. */
  release(): Promise<void>;
}

export type Acquired = { ok: true; handle: DaemonHandle } | { ok: false; reason: string };

/** cgroup parent of the containers a harness daemon makes (removed when it stops) */
export const CGROUP_PARENT: Record<DaemonKind, string> = { dockerd: 'fxh-docker', containerd: 'fxh-containerd' };

/** What the daemons of this process did (started, reused, stopped, cleaned up): for the run's notes. */
const note = addRunNote;

export function daemonDir(kind: DaemonKind, tmp = tmpdir()): string {
  return join(tmp, `fxh-${kind}`);
}

const SYSTEM_SOCKET: Record<DaemonKind, () => string> = {
  dockerd: () => {
    const h = process.env.DOCKER_HOST;
    return h?.startsWith('unix://') ? h.slice(7) : '/var/run/docker.sock';
  },
  containerd: () => process.env.CONTAINERD_ADDRESS ?? '/run/containerd/containerd.sock',
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Whether a daemon answers on `socket`: Docker's /_ping, or `ctr version`. */
export async function answers(kind: DaemonKind, socket: string): Promise<boolean> {
  if (!existsSync(socket)) return false;
  if (kind === 'dockerd') {
    const { dockerRequest } = await import('./docker-api.js');
    try {
      const r = await dockerRequest(socket, 'GET', '/_ping', undefined, 2000);
      return r.status === 200;
    } catch {
      return false;
    }
  }
  const ctr = findBinary('ctr');
  if (!ctr) return false;
  try {
    execFileSync(ctr, ['-a', socket, 'version'], { stdio: 'ignore', timeout: 3000 });
    return true;
  } catch {
    return false;
  }
}

let leaseCounter = 0;

/** A lock folder next to the daemon folder (mkdir is atomic); a lock of a dead process is taken over. */
async function withLock<T>(dir: string, f: () => Promise<T>): Promise<T> {
  const lock = `${dir}.lock`;
  const until = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'owner'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let owner = NaN;
      try {
        owner = Number(readFileSync(join(lock, 'owner'), 'utf8'));
      } catch {
        /* being created or removed */
      }
      if (Number.isFinite(owner) && owner !== process.pid && !pidAlive(owner)) rmSync(lock, { recursive: true, force: true });
      if (Date.now() > until) throw new Error(`${lock} held for 2 minutes by pid ${owner}`);
      await sleep(20);
    }
  }
  try {
    return await f();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function liveLeases(dir: string): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(join(dir, 'leases'));
  } catch {
    return [];
  }
  return names.filter((n) => pidAlive(Number(n.split('-')[0])));
}

/** The daemon's pid if it is alive and really ours (its command line names our folder). */
function daemonPid(dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dir, 'pid'), 'utf8').trim());
    if (!(pid > 0) || !pidAlive(pid)) return undefined;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** every process whose command line names `dir` (the daemon, dockerd's own containerd, shims) */
function processesUsing(dir: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir)) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

function logTail(dir: string, n = 1200): string {
  try {
    const t = readFileSync(join(dir, 'log'), 'utf8').trim();
    const lines = t.split('\n').filter((l) => /error|fatal|failed|level=warn/i.test(l));
    return (lines.length ? lines.slice(-4).join('\n') : t).slice(-n);
  } catch {
    return '(no log)';
  }
}

function removeCgroupTree(d: string): void {
  try {
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) removeCgroupTree(join(d, e.name));
    rmdirSync(d);
  } catch {
    /* gone, or still busy */
  }
}

/** Removes the cgroup parent folders a harness daemon's containers were put in, in every hierarchy. */
export function removeCgroupParent(kind: DaemonKind): void {
  for (const base of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    let ctls: string[] = [];
    try {
      ctls = readdirSync(base);
    } catch {
      continue;
    }
    for (const c of ctls) if (c !== 'unified') removeCgroupTree(join(base, c, CGROUP_PARENT[kind]));
    removeCgroupTree(join(base, CGROUP_PARENT[kind]));
  }
}

/** Stops the daemon in `dir` (SIGTERM, then SIGKILL after a short grace: its containers are gone by
 *  now and its folder is removed next, so a clean shutdown keeps nothing worth the wait, and Ctrl-C
 *  must end a run within about 2 s), unmounts what is left under it, removes it. */
const DAEMON_STOP_GRACE_MS = 500;

async function stopDaemon(kind: DaemonKind, dir: string): Promise<void> {
  const pid = daemonPid(dir);
  if (pid) {
    process.kill(pid, 'SIGTERM');
    const until = Date.now() + DAEMON_STOP_GRACE_MS;
    while (pidAlive(pid) && Date.now() < until) await sleep(20);
    if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  }
  for (let i = 0; i < 50; i++) {
    const rest = processesUsing(dir);
    if (!rest.length) break;
    for (const p of rest) {
      try {
        process.kill(p, i < 10 ? 'SIGTERM' : 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await sleep(50);
  }
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(dir + '/'))
    .reverse();
  for (const m of mounts) {
    try {
      execFileSync('umount', ['-l', m], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
  rmSync(dir, { recursive: true, force: true });
  removeCgroupParent(kind);
}

function daemonCommand(kind: DaemonKind, dir: string, bin: string): string[] {
  const sock = join(dir, kind === 'dockerd' ? 'docker.sock' : 'containerd.sock');
  if (kind === 'dockerd') {
    return [
      bin,
      '--bridge=none',
      '--iptables=false',
      '--ip6tables=false',
      '--ip-masq=false',
      `--data-root=${join(dir, 'data')}`,
      `--exec-root=${join(dir, 'exec')}`,
      `--pidfile=${join(dir, 'pid')}`,
      `--cgroup-parent=/${CGROUP_PARENT.dockerd}`,
      `--host=unix://${sock}`,
    ];
  }
  const config = [
    'version = 2',
    `root = ${JSON.stringify(join(dir, 'root'))}`,
    `state = ${JSON.stringify(join(dir, 'state'))}`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]',
    `  address = ${JSON.stringify(sock)}`,
    '[ttrpc]',
    `  address = ${JSON.stringify(sock + '.ttrpc')}`,
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${JSON.stringify(join(dir, 'opt'))}`,
  ].join('\n');
  writeFileSync(join(dir, 'config.toml'), config + '\n');
  return [bin, '--config', join(dir, 'config.toml')];
}

const PACKAGE: Record<DaemonKind, string> = { dockerd: 'docker.io', containerd: 'containerd' };

async function start(kind: DaemonKind, dir: string): Promise<Acquired> {
  const bin = findBinary(kind);
  if (!bin) return { ok: false, reason: `${kind} not found (apt-get install ${PACKAGE[kind]})` };
  mkdirSync(join(dir, 'leases'), { recursive: true });
  const argv = daemonCommand(kind, dir, bin);
  const log = openSync(join(dir, 'log'), 'a');
  // its own session: Ctrl-C in the terminal reaches the harness, which stops the daemon after its containers
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', log, log], env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' } });
  closeSync(log);
  child.unref();
  let exited: string | undefined;
  child.on('exit', (code, sig) => (exited = sig ?? String(code)));
  child.on('error', (e) => (exited = e.message));
  if (kind === 'containerd' && child.pid) writeFileSync(join(dir, 'pid'), String(child.pid));
  const sock = join(dir, kind === 'dockerd' ? 'docker.sock' : 'containerd.sock');
  const until = Date.now() + 60_000;
  while (!(await answers(kind, sock))) {
    if (exited !== undefined || Date.now() > until) {
      const why = exited !== undefined ? `exited (${exited})` : 'did not answer within 60 s';
      const tail = logTail(dir);
      await stopDaemon(kind, dir);
      return { ok: false, reason: `${kind} ${why}: ${tail}` };
    }
    await sleep(50);
  }
  return { ok: true, handle: lease(kind, dir, sock, child.pid) };
}

function lease(kind: DaemonKind, dir: string, socket: string, pid: number | undefined): DaemonHandle {
  const name = `${process.pid}-${++leaseCounter}-${randomBytes(3).toString('hex')}`;
  writeFileSync(join(dir, 'leases', name), '');
  let released: Promise<void> | undefined;
  const description = `${kind} started by the harness (data in ${dir}, socket ${socket}), stopped when the run ends`;
  note(description);
  return {
    kind,
    socket,
    startedByUs: true,
    description,
    pid,
    release() {
      released ??= withLock(dir, async () => {
        try {
          unlinkSync(join(dir, 'leases', name));
        } catch {
          /* already gone */
        }
        if (liveLeases(dir).length === 0) await stopDaemon(kind, dir);
      });
      return released;
    },
  };
}

/** A daemon of `kind` to talk to: the machine's own, else one the harness starts (or shares). */
export async function acquireDaemon(kind: DaemonKind, tmp = tmpdir()): Promise<Acquired> {
  const sys = SYSTEM_SOCKET[kind]();
  if (await answers(kind, sys)) {
    const description = `${kind} already running at ${sys}: used as it is (its configuration, not the harness's) and left running`;
    note(description);
    return { ok: true, handle: { kind, socket: sys, startedByUs: false, description, release: async () => {} } };
  }
  const dir = daemonDir(kind, tmp);
  return withLock(dir, async () => {
    if (existsSync(dir)) {
      const sock = join(dir, kind === 'dockerd' ? 'docker.sock' : 'containerd.sock');
      const pid = daemonPid(dir);
      if (liveLeases(dir).length > 0 && pid && (await answers(kind, sock))) return { ok: true, handle: lease(kind, dir, sock, pid) };
      await stopDaemon(kind, dir);
      note(`stopped and removed a ${kind} left in ${dir} by a harness process that is gone`);
    }
    return start(kind, dir);
  });
}

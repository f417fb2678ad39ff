// The network the run's namespaces share: a fabric namespace holding a bridge, one veth from this
// host into it, and one veth per node namespace. Host and nodes are on one /24 of 10.213.0.0/16
// that no interface here uses yet, so nodes reach each other and the host without touching the
// host's forwarding or routes. Everything is named after this process (namespaces fxh-<pid>-f<n>-…,
// the host's veth fxh<pid>f<n>): a reaper child removes it if we die by SIGKILL, and
// sweepStaleNetworks() removes what a dead run left and says so.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { pidAlive } from '../proc-memory.js';

function ip(args: string[], what: string): string {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.error) throw new Error(`${what}: cannot run ip (iproute2): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${what}: ip ${args.join(' ')}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** Whether this process can create network namespaces (root, iproute2), else why not. */
export function netnsAvailable(): { ok: true } | { ok: false; reason: string } {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'network namespaces need root' };
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return { ok: false, reason: `ip netns does not work here: ${(r.error?.message ?? r.stderr).trim()}` };
  return { ok: true };
}

export function namespaces(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n').map((l) => l.split(' ')[0]!).filter(Boolean) : [];
}

export function hostLinks(): string[] {
  const r = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  return r.status === 0 ? [...r.stdout.matchAll(/^\d+: ([^:@]+)[@:]/gm)].map((m) => m[1]!) : [];
}

/** kills every process in namespace `ns`, then deletes it (its veth ends go with it) */
function removeNamespace(ns: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean) ?? [];
  for (const p of pids) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {}
  }
  spawnSync('ip', ['netns', 'del', ns]);
}

/** Removes namespaces fxh-<pid>-… and host veths fxh<pid>f… of dead pids; one line per thing removed. */
export function sweepStaleNetworks(alive: (pid: number) => boolean = pidAlive): string[] {
  const lines: string[] = [];
  const dead = (pid: number) => pid !== process.pid && !alive(pid);
  for (const ns of namespaces()) {
    const m = /^fxh-(\d+)-/.exec(ns);
    if (!m || !dead(Number(m[1]))) continue;
    removeNamespace(ns);
    lines.push(namespaces().includes(ns) ? `could not remove stale network namespace ${ns}` : `removed stale network namespace ${ns} and its processes (pid ${m[1]} is gone)`);
  }
  for (const l of hostLinks()) {
    const m = /^fxh(\d+)f\d+$/.exec(l);
    if (!m || !dead(Number(m[1]))) continue;
    spawnSync('ip', ['link', 'del', l]);
    lines.push(`removed stale veth ${l} (pid ${m[1]} is gone)`);
  }
  return lines;
}

function freeSubnet(): number {
  const used = new Set([...ip(['-o', '-4', 'addr', 'show'], 'listing addresses').matchAll(/inet 10\.213\.(\d+)\./g)].map((m) => Number(m[1])));
  for (let i = 0; i < 250; i++) {
    const s = 1 + ((process.pid + i) % 250);
    if (!used.has(s)) return s;
  }
  throw new Error('no free /24 left in 10.213.0.0/16 for a namespace network');
}

export interface NamespaceNode {
  /** the namespace's name, for `ip netns exec` */
  ns: string;
  /** its IPv4 address on the fabric */
  address: string;
  remove(): void;
}

let fabrics = 0;

export class Fabric {
  private nodes = 0;
  private reaper: ChildProcess | null = null;
  private gone = false;
  private readonly onExit = () => this.destroy();

  private constructor(
    readonly prefix: string,
    readonly hostVeth: string,
    readonly subnet: number,
  ) {}

  /** the host's address on the fabric */
  get hostAddress(): string {
    return `10.213.${this.subnet}.1`;
  }

  private get hub(): string {
    return `${this.prefix}net`;
  }

  /** Sweeps what dead runs left (reported through `report`), then builds a new fabric. */
  static create(report: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Fabric {
    const why = netnsAvailable();
    if (!why.ok) throw new Error(`cannot create namespace nodes: ${why.reason}`);
    for (const line of sweepStaleNetworks()) report(line);
    const n = fabrics++;
    const f = new Fabric(`fxh-${process.pid}-f${n}-`, `fxh${process.pid}f${n}`, freeSubnet());
    f.startReaper();
    process.once('exit', f.onExit);
    try {
      ip(['netns', 'add', f.hub], 'fabric namespace');
      ip(['-n', f.hub, 'link', 'add', 'br0', 'type', 'bridge'], 'fabric bridge');
      ip(['-n', f.hub, 'link', 'set', 'br0', 'up'], 'fabric bridge');
      ip(['link', 'add', f.hostVeth, 'type', 'veth', 'peer', 'name', 'host', 'netns', f.hub], 'host veth');
      ip(['-n', f.hub, 'link', 'set', 'host', 'master', 'br0', 'up'], 'host veth');
      ip(['addr', 'add', `${f.hostAddress}/24`, 'dev', f.hostVeth], 'host address');
      ip(['link', 'set', f.hostVeth, 'up'], 'host veth');
    } catch (e) {
      f.destroy();
      throw e;
    }
    return f;
  }

  /**
   * If we are SIGKILLed no handler runs: a shell that outlives us (its own process group, deaf to
   * Ctrl-C) waits for its stdin, our pipe, to close, then removes our namespaces and veth.
   */
  private startReaper(): void {
    // the agents' own lifelines (our pipes) stop them first, so they remove their scratch folders:
    // up to 2 s of grace before SIGKILL
    const script = [
      `trap '' INT TERM HUP; cat >/dev/null`,
      `mine() { ip netns list | cut -d' ' -f1 | grep "^${this.prefix}"; }`,
      `i=0; while [ $i -lt 20 ] && [ -n "$(for n in $(mine); do ip netns pids "$n"; done)" ]; do sleep 0.1; i=$((i+1)); done`,
      `for n in $(mine); do ip netns pids "$n" | xargs -r kill -9; ip netns del "$n"; done`,
      `ip link del ${this.hostVeth} 2>/dev/null; exit 0`,
    ].join('\n');
    this.reaper = spawn('/bin/sh', ['-c', script], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
    this.reaper.unref();
    (this.reaper.stdin as unknown as { unref?: () => void }).unref?.();
  }

  /** A new namespace joined to the fabric, with an address of its own and lo up. */
  addNode(label: string): NamespaceNode {
    if (this.gone) throw new Error('this namespace fabric was destroyed');
    const k = ++this.nodes;
    if (k > 250) throw new Error('a fabric holds at most 250 nodes');
    const ns = `${this.prefix}${k}-${label.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40)}`;
    const port = `p${k}`;
    const address = `10.213.${this.subnet}.${k + 1}`;
    ip(['netns', 'add', ns], `namespace of node ${label}`);
    const remove = () => removeNamespace(ns);
    try {
      ip(['-n', this.hub, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns], `veth of node ${label}`);
      ip(['-n', this.hub, 'link', 'set', port, 'master', 'br0', 'up'], `veth of node ${label}`);
      ip(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0'], `address of node ${label}`);
      ip(['-n', ns, 'link', 'set', 'eth0', 'up'], `veth of node ${label}`);
      ip(['-n', ns, 'link', 'set', 'lo', 'up'], `loopback of node ${label}`);
    } catch (e) {
      remove();
      throw e;
    }
    return { ns, address, remove };
  }

  /** Removes every namespace (killing what runs in them) and the host's veth. Safe to call twice. */
  destroy(): void {
    if (this.gone) return;
    this.gone = true;
    process.off('exit', this.onExit);
    for (const ns of namespaces().filter((n) => n.startsWith(this.prefix))) removeNamespace(ns);
    spawnSync('ip', ['link', 'del', this.hostVeth]);
    if (this.reaper?.pid) {
      try {
        process.kill(-this.reaper.pid, 'SIGKILL');
      } catch {}
    }
  }
}

let shared: { fabric: Fabric; users: number } | null = null;

/** The process's fabric, built on first use; give it back with releaseFabric(). */
export function acquireFabric(): Fabric {
  shared ??= { fabric: Fabric.create(), users: 0 };
  shared.users++;
  return shared.fabric;
}

/** The last user gone, the fabric is destroyed. */
export function releaseFabric(f: Fabric): void {
  if (!shared || shared.fabric !== f) return;
  if (--shared.users > 0) return;
  shared = null;
  f.destroy();
}

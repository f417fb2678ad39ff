// The OCI runtime (runc by default; crun only when asked for AND it passes a probe container).
// Everything goes through the runtime's own CLI with its default state root, so `runc list`
// outside the harness shows what the harness made. Our container ids are `fxh-<harness pid>-<n>`.
import { execFile } from 'node:child_process';
import { accessSync, constants as fsConstants, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, rmdirSync, statSync, writeFileSync, copyFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, delimiter, join } from 'node:path';
import type { Capability } from '../../platform/variant.js';
import { pidAlive } from '../../platform/proc-memory.js';
import { ociConfig } from './bundle.js';

export const CONTAINER_ID_PREFIX = 'fxh-';
const ID_RE = /^fxh-(\d+)-(\d+)$/;

export interface OciRuntimeOptions {
  /** runtime binary: a name looked up in PATH (+ /usr/sbin, /sbin) or a path. Default: env FXH_OCI_RUNTIME, else 'runc'. */
  binary?: string;
  /** `--root` state directory; default: none given, i.e. the runtime's default (/run/runc for root) */
  root?: string;
  /** who we are (tests inject a non-root uid) */
  getuid?: () => number;
  /** where notes such as "removed leftover container" go; default console.error */
  log?: (msg: string) => void;
  /** a static binary exiting 0 to run as the probe container; default /bin/busybox (`true`), else a built-in tiny x86-64 ELF; 'builtin' forces the latter */
  probeBinary?: string;
}

export interface ContainerInfo {
  id: string;
  pid: number;
  status: string;
  bundle: string;
}

let counter = 0;

export function findInPath(name: string): string | undefined {
  if (name.includes('/')) return existsSync(name) ? name : undefined;
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    try {
      accessSync(p, fsConstants.X_OK);
      if (statSync(p).isFile()) return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** A 129-byte static x86-64 ELF that calls exit(0): the probe when busybox-static is not installed. */
function tinyTrueElf(): Buffer {
  const b = Buffer.alloc(64 + 56 + 9);
  const base = 0x400000n;
  b.write('\x7fELF', 0, 'latin1');
  b[4] = 2; // 64-bit
  b[5] = 1; // little endian
  b[6] = 1; // version
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(0x3e, 18); // x86-64
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(base + 120n, 24); // entry
  b.writeBigUInt64LE(64n, 32); // phoff
  b.writeUInt16LE(64, 52); // ehsize
  b.writeUInt16LE(56, 54); // phentsize
  b.writeUInt16LE(1, 56); // phnum
  b.writeUInt32LE(1, 64); // PT_LOAD
  b.writeUInt32LE(5, 68); // R+X
  b.writeBigUInt64LE(0n, 72); // offset
  b.writeBigUInt64LE(base, 80); // vaddr
  b.writeBigUInt64LE(base, 88); // paddr
  b.writeBigUInt64LE(BigInt(b.length), 96); // filesz
  b.writeBigUInt64LE(BigInt(b.length), 104); // memsz
  b.writeBigUInt64LE(0x1000n, 112); // align
  // mov eax, 60 ; xor edi, edi ; syscall
  Buffer.from([0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05]).copy(b, 120);
  return b;
}

function run(cmd: string, args: readonly string[], timeoutMs = 15_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20, env }, (err, stdout, stderr) => {
      // err.code is the exit status when the command ran, an errno string (ENOENT, ...) when it did not
      const raw: unknown = err ? (err as { code?: unknown }).code : 0;
      const code = typeof raw === 'number' ? raw : -1;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) || (err && code === -1 ? err.message : '') });
    });
  });
}

/** Every cgroup directory named like one of our containers (optionally only `id`), anywhere up to 6 levels below /sys/fs/cgroup. */
export function ourCgroupDirs(id?: string, root = '/sys/fs/cgroup'): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = join(dir, e.name);
      if (id ? e.name === id : ID_RE.test(e.name)) out.push(p);
      else if (depth < 6) walk(p, depth + 1);
    }
  };
  walk(root, 0);
  return out.sort();
}

export class OciRuntime {
  /** 'runc' or 'crun' (the binary's base name) */
  readonly name: string;
  /** as given (name or path) */
  readonly requested: string;
  /** resolved path, undefined when not found */
  readonly binary: string | undefined;
  private readonly opts: OciRuntimeOptions;
  private probeResult: Promise<Capability> | undefined;
  private leftoversDone = false;

  constructor(opts: OciRuntimeOptions = {}) {
    this.opts = opts;
    this.requested = opts.binary ?? process.env.FXH_OCI_RUNTIME ?? 'runc';
    this.name = basename(this.requested);
    this.binary = findInPath(this.requested);
  }

  private log(msg: string): void {
    (this.opts.log ?? ((m: string) => console.error(m)))(msg);
  }

  /** The binary to spawn; throws when missing (call check() first). */
  get command(): string {
    if (!this.binary) throw new Error(`${this.requested} not found`);
    return this.binary;
  }

  /** Global arguments before the subcommand (only --root when one was configured). */
  get globalArgs(): string[] {
    return this.opts.root ? ['--root', this.opts.root] : [];
  }

  /** The runtime's state directory (where `<id>/state.json` lives). */
  get stateRoot(): string {
    return this.opts.root ?? (this.name === 'crun' ? '/run/crun' : '/run/runc');
  }

  newId(): string {
    return `${CONTAINER_ID_PREFIX}${process.pid}-${++counter}`;
  }

  /** Arguments for a foreground `run` of `bundle` as container `id`. With terminal=false the runtime hands its stdio to the container process. */
  runArgs(bundle: string, id: string): string[] {
    return [...this.globalArgs, 'run', '--bundle', bundle, id];
  }

  /**
   * Whether containers can run here: root, the binary, a usable cgroup mount, and a probe container that
   * really runs (cached). The reason says exactly what is missing.
   */
  async check(): Promise<Capability> {
    const uid = (this.opts.getuid ?? process.getuid ?? (() => 0))();
    if (uid !== 0) return { ok: false, reason: `needs root: ${this.name} creates namespaces and cgroups` };
    if (!this.binary) {
      const pkg = this.name === 'crun' ? 'crun' : 'runc';
      return { ok: false, reason: `OCI runtime ${this.requested} not found (apt-get install ${pkg})` };
    }
    const cg = this.cgroupProblem();
    if (cg) return { ok: false, reason: cg };
    this.probeResult ??= this.probe();
    const r = await this.probeResult;
    if (r.ok) await this.cleanupLeftovers();
    return r;
  }

  private cgroupProblem(): string | null {
    if (!existsSync('/sys/fs/cgroup')) return 'no cgroup filesystem at /sys/fs/cgroup';
    const v1 = existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes');
    let v2 = false;
    try {
      v2 = readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').split(/\s+/).includes('memory');
    } catch {
      /* not pure v2 */
    }
    if (!v1 && !v2) return 'no cgroup memory controller: neither /sys/fs/cgroup/memory (v1) nor memory in /sys/fs/cgroup/cgroup.controllers (v2)';
    try {
      accessSync(v1 ? '/sys/fs/cgroup/memory' : '/sys/fs/cgroup', fsConstants.W_OK);
    } catch {
      return 'the cgroup filesystem is read-only here (a container without cgroup delegation?)';
    }
    return null;
  }

  private async probe(): Promise<Capability> {
    const dir = join(tmpdir(), `fxh-probe-${process.pid}-${++counter}`);
    const id = this.newId();
    try {
      mkdirSync(join(dir, 'rootfs'), { recursive: true });
      for (const d of ['proc', 'dev', 'sys', 'tmp']) mkdirSync(join(dir, 'rootfs', d));
      const probe =
        this.opts.probeBinary === 'builtin' ? undefined : this.opts.probeBinary ?? (existsSync('/bin/busybox') ? '/bin/busybox' : undefined);
      const isBusybox = probe !== undefined && basename(probe) === 'busybox';
      // busybox picks its applet from argv[0]: keep its name and ask for `true`
      const fx = join(dir, 'rootfs', isBusybox ? 'busybox' : 'fx');
      const args = isBusybox ? ['/busybox', 'true'] : ['/fx'];
      if (probe) {
        copyFileSync(probe, fx);
      } else if (process.arch === 'x64') {
        writeFileSync(fx, tinyTrueElf());
      } else {
        return { ok: false, reason: 'no static probe binary: apt-get install busybox-static' };
      }
      chmodSync(fx, 0o755);
      writeFileSync(join(dir, 'config.json'), JSON.stringify(ociConfig({ args, hostname: 'fxh-probe', env: [], memoryLimitMiB: 32, pidsLimit: 16 })));
      const r = await run(this.command, [...this.runArgs(dir, id)], 20_000);
      if (r.code !== 0) {
        return {
          ok: false,
          reason: `a probe container does not run with ${this.binary} (exit ${r.code}): ${r.stderr.trim().slice(-400) || 'no message'}`,
        };
      }
      return { ok: true };
    } catch (e) {
      return { ok: false, reason: `probe container setup failed: ${(e as Error).message}` };
    } finally {
      await this.destroy(id);
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Containers the runtime knows (all of them, not only ours). */
  async list(): Promise<ContainerInfo[]> {
    const r = await run(this.command, [...this.globalArgs, 'list', '--format', 'json']);
    if (r.code !== 0) throw new Error(`${this.name} list failed: ${r.stderr.trim()}`);
    const parsed = JSON.parse(r.stdout.trim() || 'null') as ContainerInfo[] | null;
    return (parsed ?? []).map((c) => ({ id: c.id, pid: c.pid, status: c.status, bundle: c.bundle }));
  }

  /** Our containers (id fxh-<pid>-<n>); with `harnessPid`, only those of that harness process. */
  async listOurs(harnessPid?: number): Promise<ContainerInfo[]> {
    return (await this.list()).filter((c) => {
      const m = ID_RE.exec(c.id);
      return m !== null && (harnessPid === undefined || Number(m[1]) === harnessPid);
    });
  }

  /** Whether the runtime still has state for `id` (a cheap look at the state directory). */
  exists(id: string): boolean {
    return existsSync(join(this.stateRoot, id));
  }

  async state(id: string): Promise<ContainerInfo | undefined> {
    const r = await run(this.command, [...this.globalArgs, 'state', id]);
    if (r.code !== 0) return undefined;
    const s = JSON.parse(r.stdout) as ContainerInfo;
    return { id: s.id, pid: s.pid, status: s.status, bundle: s.bundle };
  }

  /** Freezes every process of container `id` (the cgroup freezer); resume thaws them. Rejects with the runtime's error. */
  async pause(id: string): Promise<void> {
    const r = await run(this.command, [...this.globalArgs, 'pause', id]);
    if (r.code !== 0) throw new Error(`${this.name} pause ${id}: ${r.stderr.trim()}`);
  }

  async resume(id: string): Promise<void> {
    const r = await run(this.command, [...this.globalArgs, 'resume', id]);
    if (r.code !== 0) throw new Error(`${this.name} resume ${id}: ${r.stderr.trim()}`);
  }

  async kill(id: string, signal = 'KILL'): Promise<boolean> {
    return (await run(this.command, [...this.globalArgs, 'kill', id, signal])).code === 0;
  }

  /**
   * Kills container `id` that a foreground `run` (process `runner`) is starting or running: waits until the
   * runtime knows the container (killing the runtime mid-create would strand a half-made container and its
   * cgroups), then `kill KILL` + `delete -f`. Only if it never appears within `waitMs` is the runner SIGKILLed.
   */
  async killStarting(id: string, runner: { exitCode: number | null; signalCode: string | null; kill(sig: NodeJS.Signals): boolean }, waitMs = 3000): Promise<void> {
    const until = Date.now() + waitMs;
    const running = (): boolean => runner.exitCode === null && runner.signalCode === null;
    while (running()) {
      if (this.exists(id) && (await this.kill(id, 'KILL'))) break;
      if (Date.now() > until) {
        runner.kill('SIGKILL');
        break;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await this.delete(id);
  }

  async delete(id: string): Promise<boolean> {
    return (await run(this.command, [...this.globalArgs, 'delete', '-f', id])).code === 0;
  }

  /**
   * Makes sure container `id` is gone: `kill KILL` + `delete -f` while the runtime knows it, then removes
   * any cgroup directory still named after it (a runtime killed mid-create can leave one).
   */
  async destroy(id: string): Promise<void> {
    for (let attempt = 0; attempt < 3 && this.binary && this.exists(id); attempt++) {
      await this.kill(id, 'KILL');
      await this.delete(id);
      if (this.exists(id)) await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
    }
    for (const d of ourCgroupDirs(id)) removeCgroupDir(d);
  }

  /**
   * Removes containers (and cgroup directories) left by an earlier harness process that died: ids
   * fxh-<pid>-<n> whose pid is not alive. Runs once per runtime object; returns the ids removed.
   */
  async cleanupLeftovers(force = false): Promise<string[]> {
    if (this.leftoversDone && !force) return [];
    this.leftoversDone = true;
    const removed: string[] = [];
    const dead = (id: string): boolean => {
      const m = ID_RE.exec(id);
      return m !== null && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]));
    };
    let containers: ContainerInfo[] = [];
    try {
      containers = await this.list();
    } catch (e) {
      this.log(`container: cannot list leftovers: ${(e as Error).message}`);
    }
    for (const c of containers) {
      if (!dead(c.id)) continue;
      await this.destroy(c.id);
      removed.push(c.id);
      this.log(`container: removed leftover container ${c.id} (${c.status}; harness pid ${ID_RE.exec(c.id)![1]} is gone)`);
    }
    for (const d of ourCgroupDirs()) {
      const id = basename(d);
      if (!dead(id) || this.exists(id)) continue;
      if (removeCgroupDir(d)) this.log(`container: removed leftover cgroup ${d}`);
    }
    return removed;
  }
}

/** rmdir a cgroup directory and its (empty) children; false when it still holds processes. */
function removeCgroupDir(dir: string): boolean {
  try {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroupDir(join(dir, e.name));
    rmdirSync(dir);
    return true;
  } catch {
    return false;
  }
}

// Variant `containerd`: the same `FROM scratch` image as `docker`, imported into containerd (namespace fxh)
// and run with the runc v2 shim through containerd's own client, `ctr`, as faasd runs functions.
//   cold: `ctr run --rm` per call (a new container + task; removed when it exits), stdin -> stdout
//   warm: one long-lived `ctr run --rm … /fx --serve` per function, its stdio speaking the serve protocol
// ctr only closes the task's stdin at EOF once the task exists (its closer is set after NewTask), so stdin
// is ended after ctr wrote --pid-file (written after that point); ending it earlier leaves the task waiting.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, watch } from 'node:fs';
import { join } from 'node:path';
import type { FunctionEntry } from '../functions/types.js';
import { pidAlive } from '../platform/proc-memory.js';
import {
  InvokeError,
  type Capability,
  type IdleInstances,
  type IdleOptions,
  type Invocation,
  type InvokeOptions,
  type Mode,
  type Variant,
  type VariantOptions,
  type VariantPlugin,
} from '../platform/variant.js';
import { checkServeStatus } from './native.js';
import { CGROUP_PARENT, removeCgroupParent } from './oci/daemon.js';
import { DaemonUse } from './oci/daemon-use.js';
import { sideMemory } from './oci/daemon-memory.js';
import { ensureImageTar } from './oci/image.js';
import { findInPath } from './oci/runtime.js';
import { ServeClient, TailBuffer, describeExit } from './serve-client.js';
import { COLD_WARM } from './common-modes.js';

const MODES: readonly Mode[] = COLD_WARM.map((m) => m.id);
export const CTR_NAMESPACE = 'fxh';
const ID_RE = /^fxh-(\d+)-(\d+)$/;
let counter = 0;

interface WarmTask {
  id: string;
  client: ServeClient;
  pidFile: string;
}

function ctrRun(ctr: string, args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(ctr, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const raw: unknown = err ? (err as { code?: unknown }).code : 0;
      resolve({ code: typeof raw === 'number' ? raw : -1, stdout: String(stdout), stderr: String(stderr) || (err?.message ?? '') });
    });
  });
}

/** Resolves when `file` exists (inotify on its folder, plus a check right after the watch is set). */
function whenExists(file: string, timeoutMs: number, gone: () => boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const dir = join(file, '..');
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      w.close();
      clearInterval(poll);
      resolve(ok);
    };
    const w = watch(dir, () => {
      if (existsSync(file)) finish(true);
    });
    // the watch misses nothing, but the process may die without writing it
    const poll = setInterval(() => {
      if (existsSync(file)) finish(true);
      else if (gone()) finish(false);
    }, 20);
    setTimeout(() => finish(existsSync(file)), timeoutMs).unref();
    if (existsSync(file)) finish(true);
  });
}

export class ContainerdVariant implements Variant {
  readonly name = 'containerd';
  readonly modes = MODES;
  readonly enforcesTimeouts = true;
  private readonly daemon = new DaemonUse('containerd', () => this.removeLeftovers());
  private readonly ctr = findInPath('ctr');
  private readonly pool = new Map<string, Promise<WarmTask>>();
  private readonly warm = new Set<WarmTask>();
  private readonly live = new Set<string>();
  private readonly children = new Set<ChildProcess>();

  constructor(private readonly opts: VariantOptions) {}

  private base(): string[] {
    return ['-a', this.daemon.handle!.socket, '-n', CTR_NAMESPACE];
  }

  async check(): Promise<Capability> {
    if ((process.getuid?.() ?? 0) !== 0) return { ok: false, reason: 'needs root: the harness starts containerd, or talks to a root-owned one' };
    if (!this.ctr) return { ok: false, reason: 'ctr not found (apt-get install containerd)' };
    return this.daemon.acquire();
  }

  supports(fn: FunctionEntry, mode: Mode): string | null {
    if (!MODES.includes(mode)) return `containerd variant has no mode ${mode} (only ${MODES.join(', ')})`;
    if (!fn.native) return `${fn.name} has no native build (the image holds the static native binary)`;
    return null;
  }

  private async removeLeftovers(): Promise<void> {
    const r = await ctrRun(this.ctr!, [...this.base(), 'containers', 'ls', '-q']);
    for (const id of r.stdout.split('\n').map((s) => s.trim())) {
      const m = ID_RE.exec(id);
      if (!m || Number(m[1]) === process.pid || pidAlive(Number(m[1]))) continue;
      await this.destroy(id);
      console.error(`containerd: removed leftover container ${id} (harness pid ${m[1]} is gone)`);
    }
  }

  private async ready(fn: FunctionEntry, mode: Mode): Promise<string> {
    const why = this.supports(fn, mode);
    if (why) throw new InvokeError('unavailable', why);
    const cap = await this.check();
    if (!cap.ok) throw new InvokeError('unavailable', `containerd variant unavailable: ${cap.reason}`);
    return this.daemon.once(fn.name, () => this.importImage(fn));
  }

  private async importImage(fn: FunctionEntry): Promise<string> {
    try {
      const img = ensureImageTar(join(this.opts.workDir, 'images'), { name: fn.name.toLowerCase(), binary: fn.native!, env: [] });
      const have = await ctrRun(this.ctr!, [...this.base(), 'images', 'ls', '-q']);
      if (!have.stdout.split('\n').includes(img.ref)) {
        const r = await ctrRun(this.ctr!, [...this.base(), 'images', 'import', img.path], 120_000);
        if (r.code !== 0) throw new Error(`ctr images import: ${r.stderr.trim().slice(-300)}`);
      }
      return img.ref;
    } catch (e) {
      throw new InvokeError('unavailable', `containerd image for ${fn.name}: ${(e as Error).message}`);
    }
  }

  private runArgs(ref: string, id: string, pidFile: string, cmd: string[]): string[] {
    return [
      ...this.base(),
      'run',
      '--rm',
      '--read-only',
      `--memory-limit=${this.opts.memoryLimitMiB * 1024 * 1024}`,
      `--cgroup=/${CGROUP_PARENT.containerd}/${id}`,
      `--env=FX_MEM_LIMIT_MB=${this.opts.memoryLimitMiB}`,
      `--pid-file=${pidFile}`,
      ref,
      id,
      ...cmd,
    ];
  }

  private newTask(): { id: string; pidFile: string } {
    const id = `fxh-${process.pid}-${++counter}`;
    const dir = join(this.opts.workDir, 'pids');
    mkdirSync(dir, { recursive: true });
    return { id, pidFile: join(dir, id) };
  }

  /** Kills the task and removes the task and the container (and its snapshot), whatever state they are in. */
  private async destroy(id: string): Promise<void> {
    const b = this.base();
    await ctrRun(this.ctr!, [...b, 'tasks', 'kill', '-s', 'SIGKILL', id], 10_000);
    await ctrRun(this.ctr!, [...b, 'tasks', 'rm', '-f', id], 10_000);
    await ctrRun(this.ctr!, [...b, 'containers', 'rm', id], 10_000);
    this.live.delete(id);
  }

  /** Whether containerd still knows container `id`. */
  async exists(id: string): Promise<boolean> {
    const r = await ctrRun(this.ctr!, [...this.base(), 'containers', 'info', id], 10_000);
    return r.code === 0;
  }

  async invoke(fn: FunctionEntry, mode: Mode, input: Uint8Array, opts: InvokeOptions): Promise<Invocation> {
    const ref = await this.ready(fn, mode);
    if (mode === 'cold') return this.invokeCold(fn, ref, input, opts);
    const t0 = process.hrtime.bigint();
    const wt = await this.warmTask(fn);
    const r = await wt.client.request(input, opts.timeoutMs);
    const t1 = process.hrtime.bigint();
    checkServeStatus(wt.client.label, r.status, r.output);
    return { output: r.output, elapsedNs: Number(t1 - t0) };
  }

  private async invokeCold(fn: FunctionEntry, ref: string, input: Uint8Array, opts: InvokeOptions): Promise<Invocation> {
    const { id, pidFile } = this.newTask();
    const label = `containerd cold ${fn.name} (${id})`;
    this.live.add(id);
    let failed = true;
    try {
      const r = await new Promise<Invocation>((resolve, reject) => {
        const t0 = process.hrtime.bigint();
        const child = spawn(this.ctr!, this.runArgs(ref, id, pidFile, []), { stdio: ['pipe', 'pipe', 'pipe'] });
        this.children.add(child);
        const out: Buffer[] = [];
        const err = new TailBuffer(2048);
        let timedOut = false;
        child.stdout!.on('data', (d: Buffer) => out.push(d));
        child.stderr!.on('data', (d: Buffer) => err.push(d));
        child.stdin!.on('error', () => {});
        child.on('error', (e) => reject(new InvokeError('unavailable', `${label}: cannot start ctr: ${e.message}`)));
        const timer = setTimeout(() => {
          timedOut = true;
          // kill the task: ctr run --rm then removes the container; SIGKILL to ctr would leave it
          void ctrRun(this.ctr!, [...this.base(), 'tasks', 'kill', '-s', 'SIGKILL', id], 10_000).then(() =>
            setTimeout(() => child.kill('SIGKILL'), 3000).unref(),
          );
        }, opts.timeoutMs);
        child.stdin!.write(input);
        void whenExists(pidFile, opts.timeoutMs, () => child.exitCode !== null || child.signalCode !== null).then(() => child.stdin!.end());
        child.on('close', (code, signal) => {
          const t1 = process.hrtime.bigint();
          clearTimeout(timer);
          this.children.delete(child);
          if (timedOut) reject(new InvokeError('timeout', `${label}: no result within ${opts.timeoutMs} ms; task killed`));
          else if (code !== 0) {
            const tail = err.text();
            reject(new InvokeError('function-error', `${label}: ${describeExit(code, signal, true)}${tail ? `; stderr: ${tail}` : ''}`));
          } else resolve({ output: new Uint8Array(Buffer.concat(out)), elapsedNs: Number(t1 - t0) });
        });
      });
      failed = false;
      return r;
    } finally {
      rmSync(pidFile, { force: true });
      // `ctr run --rm` removed it when the task exited normally; after a failure make sure
      if (failed || (await this.exists(id))) await this.destroy(id);
      else this.live.delete(id);
    }
  }

  async warmTask(fn: FunctionEntry): Promise<WarmTask> {
    const existing = this.pool.get(fn.name);
    if (existing) {
      const wt = await existing.catch(() => undefined);
      if (wt?.client.alive) return wt;
      this.pool.delete(fn.name);
      if (wt) await this.stopWarm(wt);
    }
    const started = this.startWarm(fn, `containerd warm ${fn.name}`);
    this.pool.set(fn.name, started);
    started.catch(() => this.pool.delete(fn.name));
    return started;
  }

  private async startWarm(fn: FunctionEntry, label: string): Promise<WarmTask> {
    const ref = await this.ready(fn, 'warm');
    const { id, pidFile } = this.newTask();
    this.live.add(id);
    try {
      const client = await ServeClient.start(this.ctr!, this.runArgs(ref, id, pidFile, ['/fx', '--serve']), { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' }, {
        label: `${label} (${id})`,
        statusEncodesSignal: true,
        kill: async (c) => {
          await ctrRun(this.ctr!, [...this.base(), 'tasks', 'kill', '-s', 'SIGKILL', id], 10_000);
          setTimeout(() => c.child.kill('SIGKILL'), 3000).unref();
        },
      });
      const wt = { id, client, pidFile };
      this.warm.add(wt);
      return wt;
    } catch (e) {
      await this.destroy(id);
      throw e;
    }
  }

  private async stopWarm(wt: WarmTask): Promise<void> {
    await wt.client.close(1000);
    if (await this.exists(wt.id)) await this.destroy(wt.id);
    else this.live.delete(wt.id);
    rmSync(wt.pidFile, { force: true });
    this.warm.delete(wt);
  }

  /**
   * Idle instances are warm tasks, one each, with the foreground `ctr run` holding its stdio (faasd keeps one
   * client for all; here each has its own, counted with it). containerd makes the task, so it cannot start
   * in the caller's placement: memory() reports the side (oci/daemon-memory.ts).
   */
  async startIdle(fn: FunctionEntry, opts: IdleOptions): Promise<IdleInstances> {
    await this.ready(fn, 'warm');
    const started: (WarmTask & { initPid?: number })[] = [];
    let pending: Promise<unknown> = Promise.resolve();
    let closed = false;
    const add = async (input: Uint8Array): Promise<Uint8Array> => {
      if (closed) throw new InvokeError('unavailable', 'containerd idle instances: closed');
      const wt: WarmTask & { initPid?: number } = await this.startWarm(fn, `containerd idle ${fn.name} #${started.length + 1}`);
      started.push(wt);
      const r = await wt.client.request(input, opts.timeoutMs);
      checkServeStatus(wt.client.label, r.status, r.output);
      // written by ctr before the task started, so there once it answered
      wt.initPid = Number(readFileSync(wt.pidFile, 'utf8').trim());
      return r.output;
    };
    return {
      method: 'one task per instance (its /fx --serve process, a containerd-shim-runc-v2 and the `ctr run` client holding its stdio); containerd is shared: the side\'s fixed cost',
      add: (input) => {
        const p = add(input);
        pending = p.catch(() => {});
        return p;
      },
      alive: async () => started.filter((wt) => wt.client.alive).length,
      memory: async () => {
        const up = started.filter((wt) => wt.client.alive && wt.initPid! > 0);
        return sideMemory(this.daemon.handle!, up.map((wt) => ({ initPid: wt.initPid!, ...(wt.client.pid ? { clientPid: wt.client.pid } : {}) })), 'containerd');
      },
      close: async () => {
        closed = true;
        await Promise.race([pending, new Promise((r) => setTimeout(r, opts.timeoutMs).unref())]);
        await Promise.all(started.splice(0).map((wt) => this.stopWarm(wt)));
      },
    };
  }

  async teardown(): Promise<void> {
    // the daemon may stop now (its last user lets it go), taking the loaded images with it
    const used = await this.daemon.release(async () => {
      const pooled = await Promise.all([...this.pool.values()].map((p) => p.catch(() => undefined)));
      this.pool.clear();
      const warm = new Set([...this.warm, ...pooled.filter((w): w is WarmTask => w !== undefined)]);
      await Promise.all([...warm].map((wt) => wt.client.kill()));
      this.warm.clear();
      for (const ch of this.children) ch.kill('SIGKILL');
      await Promise.all([...this.live].map((id) => this.destroy(id)));
    });
    if (used) removeCgroupParent('containerd');
    rmSync(join(this.opts.workDir, 'images'), { recursive: true, force: true });
    rmSync(join(this.opts.workDir, 'pids'), { recursive: true, force: true });
  }
}

const plugin: VariantPlugin = {
  name: 'containerd',
  modes: COLD_WARM,
  summary:
    'static native binary in a FROM scratch image imported into containerd (namespace fxh; containerd started for the run unless one runs), runc v2 shim, driven by `ctr` as faasd drives containerd: ' +
    'cold = `ctr run --rm` per call, warm = long-running `/fx --serve` task per function; memory limit, read-only root, own network namespace',
  create: (opts) => new ContainerdVariant(opts),
};
export default plugin;

// Variant `docker`: the function's static binary in a `FROM scratch` image (built locally, loaded with
// POST /images/load: no registry), run by the Docker Engine through its API on the Unix socket, as a
// platform's invoker does (SeBS, OpenWhisk, Faasm use Docker).
//   cold: a new container per call: create, attach, wait, start, stdin -> stdout, remove (all timed)
//   warm: one long-lived `/fx --serve` container per function, its attached stdio speaking the serve protocol
// Docker's defaults, plus what the runc bundle has: no network, memory and pids limits, read-only root.
import { rmSync } from 'node:fs';
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
import { DaemonUse } from './oci/daemon-use.js';
import { AttachedContainer, attach, closeAgent, dockerCall, dockerRequest, waitExit } from './oci/docker-api.js';
import { ensureImageTar } from './oci/image.js';
import { sideMemory } from './oci/daemon-memory.js';
import { ServeClient, TailBuffer, describeExit } from './serve-client.js';
import { COLD_WARM } from './common-modes.js';

const MODES: readonly Mode[] = COLD_WARM.map((m) => m.id);
const NAME_RE = /^fxh-(\d+)-(\d+)$/;
let counter = 0;

interface WarmContainer {
  id: string;
  client: ServeClient;
  proc: AttachedContainer;
  /** pid of its init (/fx --serve), once asked for (density) */
  pid?: number;
}

export class DockerVariant implements Variant {
  readonly name = 'docker';
  readonly modes = MODES;
  readonly enforcesTimeouts = true;
  private readonly daemon = new DaemonUse('dockerd', () => this.removeLeftovers());
  private readonly pool = new Map<string, Promise<WarmContainer>>();
  private readonly warm = new Set<WarmContainer>();
  /** every container created and not yet removed */
  private readonly live = new Set<string>();

  constructor(private readonly opts: VariantOptions) {}

  private get socket(): string {
    return this.daemon.handle!.socket;
  }

  async check(): Promise<Capability> {
    if ((process.getuid?.() ?? 0) !== 0) return { ok: false, reason: 'needs root: the harness starts dockerd, or talks to a root-owned one' };
    return this.daemon.acquire();
  }

  supports(fn: FunctionEntry, mode: Mode): string | null {
    if (!MODES.includes(mode)) return `docker variant has no mode ${mode} (only ${MODES.join(', ')})`;
    if (!fn.native) return `${fn.name} has no native build (the image holds the static native binary)`;
    return null;
  }

  /** Containers of harness processes that are gone (only a daemon we did not start can hold them). */
  private async removeLeftovers(): Promise<void> {
    const list = await dockerCall<{ Id: string; Names: string[] }[]>(this.socket, 'GET', '/containers/json?all=1').catch(() => []);
    for (const c of list) {
      const m = c.Names.map((n) => NAME_RE.exec(n.replace(/^\//, ''))).find((x) => x);
      if (!m || Number(m[1]) === process.pid || pidAlive(Number(m[1]))) continue;
      await dockerRequest(this.socket, 'DELETE', `/containers/${c.Id}?force=1`).catch(() => {});
      console.error(`docker: removed leftover container ${c.Names.join(',')} (harness pid ${m[1]} is gone)`);
    }
  }

  private async ready(fn: FunctionEntry, mode: Mode): Promise<string> {
    const why = this.supports(fn, mode);
    if (why) throw new InvokeError('unavailable', why);
    const cap = await this.check();
    if (!cap.ok) throw new InvokeError('unavailable', `docker variant unavailable: ${cap.reason}`);
    return this.daemon.once(fn.name, () => this.loadImage(fn));
  }

  private async loadImage(fn: FunctionEntry): Promise<string> {
    try {
      const img = ensureImageTar(join(this.opts.workDir, 'images'), { name: fn.name.toLowerCase(), binary: fn.native!, env: [] });
      const have = await dockerRequest(this.socket, 'GET', `/images/${img.shortRef}/json`);
      if (have.status !== 200) {
        const { readFileSync } = await import('node:fs');
        const r = await dockerRequest(this.socket, 'POST', '/images/load?quiet=1', readFileSync(img.path), 120_000);
        const text = r.body.toString('utf8');
        if (r.status !== 200 || /"error"/.test(text)) throw new Error(`POST /images/load: ${r.status} ${text.trim().slice(0, 300)}`);
      }
      return img.shortRef;
    } catch (e) {
      throw new InvokeError('unavailable', `docker image for ${fn.name}: ${(e as Error).message}`);
    }
  }

  private createBody(image: string, cmd: string[]): Record<string, unknown> {
    const mem = this.opts.memoryLimitMiB * 1024 * 1024;
    return {
      Image: image,
      Cmd: cmd,
      Env: [`FX_MEM_LIMIT_MB=${this.opts.memoryLimitMiB}`],
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      OpenStdin: true,
      StdinOnce: true,
      Tty: false,
      HostConfig: {
        NetworkMode: 'none',
        Memory: mem,
        MemorySwap: mem,
        PidsLimit: 64,
        ReadonlyRootfs: true,
      },
    };
  }

  private newName(): string {
    return `fxh-${process.pid}-${++counter}`;
  }

  /** create + attach + wait registered + start: a running container with its stdio attached. */
  private async launch(image: string, cmd: string[], timeoutMs?: number): Promise<AttachedContainer> {
    const name = this.newName();
    const { Id: id } = await dockerCall<{ Id: string }>(this.socket, 'POST', `/containers/create?name=${name}`, this.createBody(image, cmd), timeoutMs);
    this.live.add(id);
    try {
      const { conn, head } = await attach(this.socket, id, timeoutMs);
      const w = waitExit(this.socket, id);
      await w.registered;
      const proc = new AttachedContainer(this.socket, id, conn, head, w.exited);
      await dockerCall(this.socket, 'POST', `/containers/${id}/start`, undefined, timeoutMs);
      return proc;
    } catch (e) {
      await this.remove(id);
      throw e;
    }
  }

  private async remove(id: string): Promise<void> {
    const r = await dockerRequest(this.socket, 'DELETE', `/containers/${id}?force=1`).catch((e: Error) => ({ status: 0, body: Buffer.from(e.message) }));
    if (r.status === 204 || r.status === 404) this.live.delete(id);
    else throw new Error(`docker: removing container ${id}: ${r.status} ${r.body.toString().trim()}`);
  }

  async invoke(fn: FunctionEntry, mode: Mode, input: Uint8Array, opts: InvokeOptions): Promise<Invocation> {
    const image = await this.ready(fn, mode);
    if (mode === 'cold') return this.invokeCold(fn, image, input, opts);
    const t0 = process.hrtime.bigint();
    const wc = await this.warmContainer(fn);
    const r = await wc.client.request(input, opts.timeoutMs);
    const t1 = process.hrtime.bigint();
    checkServeStatus(wc.client.label, r.status, r.output);
    return { output: r.output, elapsedNs: Number(t1 - t0) };
  }

  private async invokeCold(fn: FunctionEntry, image: string, input: Uint8Array, opts: InvokeOptions): Promise<Invocation> {
    const label = `docker cold ${fn.name}`;
    const t0 = process.hrtime.bigint();
    let proc: AttachedContainer;
    try {
      proc = await this.launch(image, []);
    } catch (e) {
      throw e instanceof InvokeError ? e : new InvokeError('function-error', `${label}: ${(e as Error).message}`);
    }
    const out: Buffer[] = [];
    const err = new TailBuffer(2048);
    proc.stdout.on('data', (d: Buffer) => out.push(d));
    proc.stderr.on('data', (d: Buffer) => err.push(d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      proc.kill();
      // a daemon that does not report the exit: stop waiting for it
      setTimeout(() => proc.stdin.destroy(), 5000).unref();
    }, opts.timeoutMs);
    try {
      proc.stdin.end(input);
      const code = await new Promise<number | null>((resolve) => proc.once('close', (c: number | null) => resolve(c)));
      clearTimeout(timer);
      await this.remove(proc.id);
      const t1 = process.hrtime.bigint();
      if (timedOut) throw new InvokeError('timeout', `${label}: no result within ${opts.timeoutMs} ms; container killed and removed`);
      if (code !== 0) {
        const tail = err.text();
        throw new InvokeError('function-error', `${label}: ${describeExit(code, null, true)}${tail ? `; stderr: ${tail}` : ''}`);
      }
      return { output: new Uint8Array(Buffer.concat(out)), elapsedNs: Number(t1 - t0) };
    } finally {
      clearTimeout(timer);
      if (this.live.has(proc.id)) await this.remove(proc.id).catch(() => {});
    }
  }

  async warmContainer(fn: FunctionEntry): Promise<WarmContainer> {
    const existing = this.pool.get(fn.name);
    if (existing) {
      const wc = await existing.catch(() => undefined);
      if (wc?.client.alive) return wc;
      this.pool.delete(fn.name);
      if (wc) await this.stopWarm(wc);
    }
    const started = this.startWarm(fn, `docker warm ${fn.name}`);
    this.pool.set(fn.name, started);
    started.catch(() => this.pool.delete(fn.name));
    return started;
  }

  private async startWarm(fn: FunctionEntry, label: string, timeoutMs?: number): Promise<WarmContainer> {
    const image = await this.ready(fn, 'warm');
    const proc = await this.launch(image, ['--serve'], timeoutMs);
    const client = ServeClient.adopt(proc, {
      label: `${label} (container ${proc.id.slice(0, 12)})`,
      statusEncodesSignal: true,
      kill: async () => {
        proc.kill();
        await this.remove(proc.id).catch(() => {});
      },
    });
    const wc = { id: proc.id, client, proc };
    this.warm.add(wc);
    return wc;
  }

  private async stopWarm(wc: WarmContainer): Promise<void> {
    await wc.client.close(1000);
    await this.remove(wc.id).catch(() => {});
    this.warm.delete(wc);
  }

  /**
   * Idle instances are warm containers, one each. dockerd makes them (they are not our children), so
   * they cannot start in the caller's placement: memory() reports the side (oci/daemon-memory.ts).
   */
  async startIdle(fn: FunctionEntry, opts: IdleOptions): Promise<IdleInstances> {
    await this.ready(fn, 'warm');
    const started: WarmContainer[] = [];
    let pending: Promise<unknown> = Promise.resolve();
    let closed = false;
    const add = async (input: Uint8Array): Promise<Uint8Array> => {
      if (closed) throw new InvokeError('unavailable', 'docker idle instances: closed');
      const wc = await this.startWarm(fn, `docker idle ${fn.name} #${started.length + 1}`, opts.timeoutMs);
      started.push(wc);
      const r = await wc.client.request(input, opts.timeoutMs);
      checkServeStatus(wc.client.label, r.status, r.output);
      const info = await dockerCall<{ State: { Pid: number } }>(this.socket, 'GET', `/containers/${wc.id}/json`, undefined, opts.timeoutMs);
      wc.pid = info.State.Pid;
      return r.output;
    };
    return {
      method: 'one container per instance (its /fx --serve process, run by dockerd through containerd and a containerd-shim-runc-v2 each); the daemon is shared: the side\'s fixed cost',
      add: (input) => {
        const p = add(input);
        pending = p.catch(() => {});
        return p;
      },
      alive: async () => started.filter((wc) => wc.client.alive).length,
      memory: async () => {
        const up = started.filter((wc) => wc.client.alive && wc.pid! > 0);
        return sideMemory(this.daemon.handle!, up.map((wc) => ({ initPid: wc.pid! })), 'docker');
      },
      close: async () => {
        closed = true;
        // a start the caller gave up on may still be under way: let it finish (bounded) so it is removed too
        await Promise.race([pending, new Promise((r) => setTimeout(r, opts.timeoutMs).unref())]);
        await Promise.all(started.splice(0).map((wc) => this.stopWarm(wc)));
      },
    };
  }

  async teardown(): Promise<void> {
    // the daemon may stop now (its last user lets it go), taking the loaded images with it
    await this.daemon.release(async () => {
      const pooled = await Promise.all([...this.pool.values()].map((p) => p.catch(() => undefined)));
      this.pool.clear();
      const warm = new Set([...this.warm, ...pooled.filter((w): w is WarmContainer => w !== undefined)]);
      await Promise.all([...warm].map((wc) => wc.client.kill()));
      this.warm.clear();
      await Promise.all([...this.live].map((id) => this.remove(id).catch((e: Error) => console.error(e.message))));
      closeAgent(this.socket);
    });
    rmSync(join(this.opts.workDir, 'images'), { recursive: true, force: true });
  }
}

const plugin: VariantPlugin = {
  name: 'docker',
  modes: COLD_WARM,
  summary:
    'static native binary in a FROM scratch image run by the Docker Engine (its API over the Unix socket; dockerd started for the run unless one runs): ' +
    'cold = create + attach + start + wait + remove per call, warm = long-running `/fx --serve` container per function; --network none, memory + pids limits, read-only root',
  create: (opts) => new DockerVariant(opts),
};
export default plugin;

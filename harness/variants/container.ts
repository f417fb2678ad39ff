// Variant `container`: each function's static native binary in an OCI container run by runc
// (crun when FXH_OCI_RUNTIME=crun and crun works here), built from a bundle with no image registry.
//   cold: a new container per invocation (`runc run`, stdin = input, stdout = output)
//   warm: one long-running container per function running `/fx --serve`, reused; replaced after a failure
// Every container is removed afterwards on every path (success, crash, timeout, teardown).
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { FunctionEntry } from '../functions/types.js';
import {
  InvokeError,
  type Capability,
  type IdleInstances,
  type IdleOptions,
  type IdlePlacement,
  type Invocation,
  type InvokeOptions,
  type Mode,
  type Variant,
  type VariantOptions,
  type VariantPlugin,
} from '../platform/variant.js';
import { checkServeStatus, runOnce } from './native.js';
import { ensureBundle, type Bundle } from './oci/bundle.js';
import { OciRuntime, type OciRuntimeOptions } from './oci/runtime.js';
import { ServeClient } from './serve-client.js';
import { COLD_WARM } from './common-modes.js';

const MODES: readonly Mode[] = COLD_WARM.map((m) => m.id);

export interface ContainerVariantOptions extends VariantOptions {
  runtime?: OciRuntimeOptions;
}

export interface WarmContainer {
  id: string;
  client: ServeClient;
}

export class ContainerVariant implements Variant {
  readonly name = 'container';
  readonly modes = MODES;
  readonly enforcesTimeouts = true;
  readonly runtime: OciRuntime;
  private readonly opts: ContainerVariantOptions;
  private readonly pool = new Map<string, Promise<WarmContainer>>();
  /** every container id started and not yet known to be gone */
  private readonly live = new Set<string>();
  private readonly warm = new Set<WarmContainer>();
  private readonly coldChildren = new Set<ChildProcess>();
  private capability: Promise<Capability> | undefined;

  constructor(opts: ContainerVariantOptions) {
    this.opts = opts;
    this.runtime = new OciRuntime(opts.runtime);
  }

  /** the runtime binary in use ('runc' or 'crun') */
  get runtimeName(): string {
    return this.runtime.name;
  }

  check(): Promise<Capability> {
    this.capability ??= this.runtime.check();
    return this.capability;
  }

  supports(fn: FunctionEntry, mode: Mode): string | null {
    if (!MODES.includes(mode)) return `container variant has no mode ${mode} (only ${MODES.join(', ')})`;
    if (!fn.native) return `${fn.name} has no native build (the container runs the static native binary)`;
    return null;
  }

  private bundle(fn: FunctionEntry): Bundle {
    try {
      return ensureBundle(this.opts.workDir, { name: fn.name, binary: fn.native!, memoryLimitMiB: this.opts.memoryLimitMiB });
    } catch (e) {
      throw new InvokeError('unavailable', `container bundle for ${fn.name}: ${(e as Error).message}`);
    }
  }

  private async ready(fn: FunctionEntry, mode: Mode): Promise<Bundle> {
    const why = this.supports(fn, mode);
    if (why) throw new InvokeError('unavailable', why);
    const cap = await this.check();
    if (!cap.ok) throw new InvokeError('unavailable', `container variant unavailable: ${cap.reason}`);
    return this.bundle(fn);
  }

  private env(): NodeJS.ProcessEnv {
    return { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };
  }

  private async destroy(id: string): Promise<void> {
    await this.runtime.destroy(id);
    this.live.delete(id);
  }

  async invoke(fn: FunctionEntry, mode: Mode, input: Uint8Array, opts: InvokeOptions): Promise<Invocation> {
    const b = await this.ready(fn, mode);
    if (mode === 'cold') return this.invokeCold(fn, b, input, opts);
    const t0 = process.hrtime.bigint();
    const wc = await this.warmContainer(fn);
    const r = await wc.client.request(input, opts.timeoutMs);
    const t1 = process.hrtime.bigint();
    checkServeStatus(wc.client.label, r.status, r.output);
    return { output: r.output, elapsedNs: Number(t1 - t0) };
  }

  private async invokeCold(fn: FunctionEntry, b: Bundle, input: Uint8Array, opts: InvokeOptions): Promise<Invocation> {
    const rt = this.runtime;
    const id = rt.newId();
    this.live.add(id);
    let failed = false;
    try {
      return await runOnce(rt.command, rt.runArgs(b.coldDir, id), this.env(), input, opts.timeoutMs, {
        label: `container cold ${fn.name} (${rt.name} ${id})`,
        statusEncodesSignal: true,
        track: this.coldChildren,
        // kill the container, not the runtime: SIGKILL to `runc run` would leave the container running
        onTimeout: (child) => rt.killStarting(id, child),
      });
    } catch (e) {
      failed = true;
      throw e;
    } finally {
      // `runc run` deletes its container when the process exits; verify cheaply, clean up fully after failures
      if (failed || rt.exists(id)) await this.destroy(id);
      else this.live.delete(id);
    }
  }

  /** The live warm container of `fn`, started on first use and replaced when it died. Exposed for tests. */
  async warmContainer(fn: FunctionEntry): Promise<WarmContainer> {
    const key = `${fn.name}\0${fn.native}`;
    const existing = this.pool.get(key);
    if (existing) {
      const wc = await existing.catch(() => undefined);
      if (wc?.client.alive) return wc;
      this.pool.delete(key);
      if (wc) await this.stopWarm(wc);
    }
    const started = this.startWarm(fn, `container warm ${fn.name}`);
    this.pool.set(key, started);
    started.catch(() => this.pool.delete(key));
    return started;
  }

  private async startWarm(fn: FunctionEntry, label: string, placement?: IdlePlacement): Promise<WarmContainer> {
    const b = await this.ready(fn, 'warm');
    const rt = this.runtime;
    const id = rt.newId();
    this.live.add(id);
    try {
      const cmd = placement ? placement.wrap(rt.command, rt.runArgs(b.serveDir, id)) : { command: rt.command, args: rt.runArgs(b.serveDir, id) };
      const client = await ServeClient.start(cmd.command, cmd.args, this.env(), {
        label: `${label} (${rt.name} ${id})`,
        statusEncodesSignal: true,
        kill: (c) => rt.killStarting(id, c.child),
      });
      const wc = { id, client };
      this.warm.add(wc);
      return wc;
    } catch (e) {
      await this.destroy(id);
      throw e;
    }
  }

  private async stopWarm(wc: WarmContainer): Promise<void> {
    await wc.client.close(1000);
    await this.destroy(wc.id);
    this.warm.delete(wc);
  }

  /**
   * pid of the container's init process (/fx --serve) once it is running (the runtime may still be
   * creating it right after start); undefined when it is gone or not running within `waitMs`.
   */
  async containerPid(wc: WarmContainer, waitMs = 5000): Promise<number | undefined> {
    const until = Date.now() + waitMs;
    for (;;) {
      const s = await this.runtime.state(wc.id);
      if (s?.status === 'running' && s.pid > 0) return s.pid;
      if (!wc.client.alive || Date.now() > until) return undefined;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /**
   * Idle instances are warm containers, one each. `runc run` starts in the placement, and runc makes the
   * container's cgroup relative to its own (no cgroupsPath in config.json: <runc's cgroup>/<id>), so the
   * container is a child of the placement's cgroup. An absolute cgroupsPath would be made in every v1 hierarchy.
   */
  async startIdle(fn: FunctionEntry, opts: IdleOptions): Promise<IdleInstances> {
    await this.ready(fn, 'warm');
    const started: WarmContainer[] = [];
    return {
      method: `one container per instance: its /fx --serve process and the foreground \`${this.runtime.name} run\` supervising it; no shared process, so no fixed cost`,
      add: async (input) => {
        const wc = await this.startWarm(fn, `container idle ${fn.name} #${started.length + 1}`, opts.placement);
        started.push(wc);
        const r = await wc.client.request(input, opts.timeoutMs);
        checkServeStatus(wc.client.label, r.status, r.output);
        return r.output;
      },
      alive: async () => started.filter((wc) => wc.client.alive).length,
      close: async () => {
        await Promise.all(started.splice(0).map((wc) => this.stopWarm(wc)));
      },
    };
  }

  async teardown(): Promise<void> {
    const pooled = await Promise.all([...this.pool.values()].map((p) => p.catch(() => undefined)));
    this.pool.clear();
    const warm = new Set([...this.warm, ...pooled.filter((w): w is WarmContainer => w !== undefined)]);
    // kill first (containers die at once), then let the clients see EOF
    await Promise.all([...warm].map((wc) => this.destroy(wc.id)));
    await Promise.all([...warm].map((wc) => wc.client.close(500)));
    this.warm.clear();
    await Promise.all([...this.live].map((id) => this.destroy(id)));
    for (const ch of this.coldChildren) ch.kill('SIGKILL');
    rmSync(join(this.opts.workDir, 'bundles'), { recursive: true, force: true });
  }
}

const plugin: VariantPlugin = {
  name: 'container',
  modes: COLD_WARM,
  summary:
    `static native binary in an OCI container (runtime: ${process.env.FXH_OCI_RUNTIME ?? 'runc'}; default runc, FXH_OCI_RUNTIME=crun to use crun where it works), bundle built locally without images: ` +
    'cold = new container per call (`runc run`), warm = long-running `/fx --serve` container per function; memory limit = cgroup memory.limit + FX_MEM_LIMIT_MB',
  create: (opts) => new ContainerVariant(opts),
};
export default plugin;

// Variant `native`: the static native build of each function run as a plain Linux process.
//   cold: one new process per invocation (stdin = input, stdout = output)
//   warm: one long-lived `<binary> --serve` process per function, reused (see serve-client.ts)
// The memory limit reaches the function as FX_MEM_LIMIT_MB (the fixtures apply it with setrlimit(RLIMIT_AS)).
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { scratchDir } from '../platform/scratch.js';
import type { FunctionEntry } from '../functions/types.js';
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
import { nativeJail, type Jail, type ProcessCgroup } from './native-jail.js';
import { ServeClient, TailBuffer, describeExit } from './serve-client.js';
import { COLD_WARM } from './common-modes.js';

const MODES: readonly Mode[] = COLD_WARM.map((m) => m.id);

export interface NativeRunResult {
  output: Uint8Array;
  elapsedNs: number;
}

/**
 * Runs `argv` once with `input` on stdin and returns stdout. Shared by the native and container
 * variants. A non-zero exit or a signal rejects with InvokeError 'function-error' (stderr tail
 * included); after `timeoutMs` `onTimeout` is called (default SIGKILL) and it rejects with 'timeout'.
 */
export function runOnce(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  input: Uint8Array,
  timeoutMs: number,
  opts: {
    label: string;
    statusEncodesSignal?: boolean;
    onTimeout?: (child: ChildProcess) => Promise<void>;
    track?: Set<ChildProcess>;
    /** run as this user (native variant as root: nobody) */
    uid?: number;
    gid?: number;
    /** called with the child right after spawn (native: moves it into its cgroup) */
    onSpawn?: (child: ChildProcess) => void;
  },
): Promise<NativeRunResult> {
  return new Promise<NativeRunResult>((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'], uid: opts.uid, gid: opts.gid });
    opts.track?.add(child);
    if (child.pid !== undefined) opts.onSpawn?.(child);
    const out: Buffer[] = [];
    const err = new TailBuffer(2048);
    let timedOut = false;
    let spawnError: Error | undefined;
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    child.stdin!.on('error', () => {
      /* EPIPE: the function exited without reading all input; judged by its exit status */
    });
    child.on('error', (e) => {
      spawnError = e;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      const kill = opts.onTimeout ?? (async (c: ChildProcess) => void c.kill('SIGKILL'));
      kill(child)
        .catch(() => child.kill('SIGKILL'))
        .finally(() => {
          // never wait forever for the supervisor of a killed function
          setTimeout(() => {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          }, 2000).unref();
        });
    }, timeoutMs);
    child.on('close', (code, signal) => {
      const t1 = process.hrtime.bigint();
      clearTimeout(timer);
      opts.track?.delete(child);
      if (spawnError && child.pid === undefined) {
        reject(new InvokeError('unavailable', `${opts.label}: cannot start ${command}: ${spawnError.message}`));
      } else if (timedOut) {
        reject(new InvokeError('timeout', `${opts.label}: no result within ${timeoutMs} ms; killed`));
      } else if (code !== 0) {
        const tail = err.text();
        reject(
          new InvokeError(
            'function-error',
            `${opts.label}: ${describeExit(code, signal, opts.statusEncodesSignal)}${tail ? `; stderr: ${tail}` : ''}`,
          ),
        );
      } else {
        resolve({ output: new Uint8Array(Buffer.concat(out)), elapsedNs: Number(t1 - t0) });
      }
    });
    child.stdin!.end(input);
  });
}

/** The serve-mode response check shared by both variants: a non-zero status is a function error. */
export function checkServeStatus(label: string, status: number, output: Uint8Array): void {
  if (status !== 0) {
    const text = Buffer.from(output.subarray(0, 200)).toString('utf8');
    throw new InvokeError('function-error', `${label}: function returned status ${status}${text ? `; output: ${text}` : ''}`);
  }
}

export class NativeVariant implements Variant {
  readonly name = 'native';
  readonly modes = MODES;
  readonly enforcesTimeouts = true;
  private readonly pool = new Map<string, Promise<ServeClient>>();
  private readonly extra = new Set<ServeClient>();
  private readonly coldChildren = new Set<ChildProcess>();
  /** the cgroup of each live serve process */
  private readonly cgroups = new Map<ServeClient, ProcessCgroup>();
  readonly jail: Jail;
  /** binaries copied where the jail's user can execute them, by source path (see binaryFor) */
  private readonly staged = new Map<string, string>();
  private stageDir: string | undefined;

  constructor(private readonly opts: VariantOptions) {
    this.jail = nativeJail(opts.memoryLimitMiB);
  }

  /**
   * The path to exec for `fn`. Running as another user, the binary must be reachable by that user,
   * but it may sit in a folder only root can enter (a scratch folder made 0700, a clone under /root,
   * a node agent's module store): it is then copied once, untimed, into a folder of ours that anyone
   * may traverse. As ourselves, the binary itself.
   */
  private binaryFor(fn: FunctionEntry): string {
    const src = fn.native!;
    if (this.jail.uid === undefined) return src;
    let bin = this.staged.get(src);
    if (!bin) {
      if (!this.stageDir) {
        this.stageDir = scratchDir('nativebin');
        chmodSync(this.stageDir, 0o755);
      }
      bin = join(this.stageDir, `${this.staged.size}-${basename(src)}`);
      copyFileSync(src, bin);
      chmodSync(bin, 0o755);
      this.staged.set(src, bin);
    }
    return bin;
  }

  /** Starts `<binary> --serve` as the jail's user, in a cgroup of its own. */
  private async startServe(fn: FunctionEntry, label: string): Promise<ServeClient> {
    const c = await ServeClient.start(this.binaryFor(fn), ['--serve'], this.env(), { label, uid: this.jail.uid, gid: this.jail.gid });
    const cg = this.jail.cgroup?.(fn.name.replace(/[^A-Za-z0-9_.-]/g, '_'));
    if (cg) {
      try {
        cg.add(c.pid!);
      } catch (e) {
        await c.kill();
        cg.remove();
        throw new InvokeError('unavailable', `${label}: cannot move pid ${c.pid} into its cgroup: ${(e as Error).message}`);
      }
      this.cgroups.set(c, cg);
      void c.closed.then(() => {
        cg.remove();
        this.cgroups.delete(c);
      });
    }
    return c;
  }

  private env(): NodeJS.ProcessEnv {
    return { FX_MEM_LIMIT_MB: String(this.opts.memoryLimitMiB) };
  }

  async check(): Promise<Capability> {
    if (process.platform !== 'linux') return { ok: false, reason: `native variant needs Linux static binaries; this is ${process.platform}` };
    return { ok: true };
  }

  supports(fn: FunctionEntry, mode: Mode): string | null {
    if (!MODES.includes(mode)) return `native variant has no mode ${mode} (only ${MODES.join(', ')})`;
    if (!fn.native) return `${fn.name} has no native build`;
    if (!existsSync(fn.native)) return `native binary of ${fn.name} is not built: ${fn.native}`;
    return null;
  }

  async invoke(fn: FunctionEntry, mode: Mode, input: Uint8Array, opts: InvokeOptions): Promise<Invocation> {
    const why = this.supports(fn, mode);
    if (why) throw new InvokeError('unavailable', why);
    if (mode === 'cold') {
      const bin = this.binaryFor(fn);
      let cg: ProcessCgroup | undefined;
      try {
        return await runOnce(bin, [], this.env(), input, opts.timeoutMs, {
          label: `native cold ${fn.name}`,
          track: this.coldChildren,
          uid: this.jail.uid,
          gid: this.jail.gid,
          onSpawn: (child) => {
            cg = this.jail.cgroup?.(fn.name.replace(/[^A-Za-z0-9_.-]/g, '_'));
            try {
              cg?.add(child.pid!);
            } catch {
              child.kill('SIGKILL'); // exited already, or the cgroup refused it: never run it unconfined
            }
          },
        });
      } finally {
        cg?.remove();
      }
    }
    const t0 = process.hrtime.bigint();
    const client = await this.warmClient(fn);
    const r = await client.request(input, opts.timeoutMs);
    const t1 = process.hrtime.bigint();
    checkServeStatus(client.label, r.status, r.output);
    return { output: r.output, elapsedNs: Number(t1 - t0) };
  }

  /** The live serve process of `fn`, started on first use and replaced when it died. Exposed for tests. */
  async warmClient(fn: FunctionEntry): Promise<ServeClient> {
    const key = `${fn.name}\0${fn.native}`;
    const existing = this.pool.get(key);
    if (existing) {
      const c = await existing.catch(() => undefined);
      if (c?.alive) return c;
      this.pool.delete(key);
      if (c) void c.close();
    }
    const started = this.startServe(fn, `native warm ${fn.name}`);
    this.pool.set(key, started);
    started.catch(() => this.pool.delete(key));
    return started;
  }

  /** Idle instances are `--serve` processes, one each, started in the placement; nothing is shared but the kernel's page cache. */
  async startIdle(fn: FunctionEntry, opts: IdleOptions): Promise<IdleInstances> {
    const why = this.supports(fn, 'warm');
    if (why) throw new InvokeError('unavailable', why);
    const clients: ServeClient[] = [];
    return {
      // started through the density cell's placement as root: its wrapper must write the cell's
      // cgroup.procs, which the jail's unprivileged user cannot (memory does not depend on the uid)
      method: 'one `--serve` process (the static binary) per instance, as root in the density cell; no shared process, so no fixed cost',
      add: async (input) => {
        const w = opts.placement.wrap(fn.native!, ['--serve']);
        const c = await ServeClient.start(w.command, w.args, this.env(), { label: `native idle ${fn.name} #${clients.length + 1}` });
        clients.push(c);
        this.extra.add(c);
        const r = await c.request(input, opts.timeoutMs);
        checkServeStatus(c.label, r.status, r.output);
        return r.output;
      },
      alive: async () => clients.filter((c) => c.alive).length,
      close: async () => {
        await Promise.all(clients.map((c) => c.close(500)));
        for (const c of clients) this.extra.delete(c);
      },
    };
  }

  async teardown(): Promise<void> {
    const clients = await Promise.all([...this.pool.values()].map((p) => p.catch(() => undefined)));
    this.pool.clear();
    for (const ch of this.coldChildren) ch.kill('SIGKILL');
    await Promise.all([...clients, ...this.extra].map((c) => c?.close(500)));
    this.extra.clear();
    for (const cg of this.cgroups.values()) cg.remove();
    this.cgroups.clear();
    if (this.stageDir) rmSync(this.stageDir, { recursive: true, force: true });
    this.stageDir = undefined;
    this.staged.clear();
  }
}

const plugin: VariantPlugin = {
  name: 'native',
  modes: COLD_WARM,
  summary:
    'static native binary as a Linux process: cold = new process per call (stdin->stdout), warm = reused `--serve` process per function; memory limit via FX_MEM_LIMIT_MB (setrlimit); ' +
    'as root: run as nobody (65534, no capabilities), each process in a cgroup with the container\'s memory and pids limits; no namespaces, so it sees the host\'s files, processes and network',
  create: (opts) => new NativeVariant(opts),
};
export default plugin;

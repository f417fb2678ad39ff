// A client for one long-lived process that speaks the `--serve` protocol of the native
// fixtures over its stdio (NATIVE_SERVE_PROTOCOL in harness/functions/types.ts):
//   request:  u32le length, bytes
//   response: u32le length, i32le status, bytes
// One process serves one request at a time, so requests are queued and sent one by one.
import { spawn, type SpawnOptions } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import { constants as osConstants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { InvokeError } from '../platform/variant.js';

export interface ServeResponse {
  status: number;
  output: Uint8Array;
}

export interface ServeClientOptions extends Pick<SpawnOptions, 'cwd' | 'uid' | 'gid' | 'detached'> {
  /** used in error messages, e.g. "native warm noop" */
  label?: string;
  /**
   * How to kill the process after a timeout or on close() when it does not exit by itself.
   * Default: SIGKILL to the child. The container variant replaces it with `runc kill` + `runc delete -f`,
   * because SIGKILL to `runc run` would leave the container behind.
   */
  kill?: (client: ServeClient) => Promise<void>;
  /** an exit status above 128 means "killed by signal status-128" (true for `runc run`, which reports it that way) */
  statusEncodesSignal?: boolean;
  /** bytes of stderr kept for error messages (default 2048) */
  stderrTailBytes?: number;
}

/** What the client needs of the serving process: a ChildProcess, or e.g. a container attached through an API. */
export interface ServeProcess extends EventEmitter {
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  readonly pid?: number | undefined;
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  kill(signal?: NodeJS.Signals | number): boolean;
}

interface Pending {
  input: Uint8Array;
  timeoutMs: number;
  resolve: (r: ServeResponse) => void;
  reject: (e: Error) => void;
}

const SIGNAL_NAMES = new Map<number, string>(Object.entries(osConstants.signals).map(([n, v]) => [v as number, n]));

/** "killed by SIGSEGV", "exit status 3", "exit status 139 (SIGSEGV)". */
export function describeExit(code: number | null, signal: NodeJS.Signals | null, statusEncodesSignal = false): string {
  if (signal) return `killed by ${signal}`;
  if (code === null) return 'exited (status unknown)';
  if (statusEncodesSignal && code > 128 && SIGNAL_NAMES.has(code - 128)) {
    return `killed by ${SIGNAL_NAMES.get(code - 128)!} (exit status ${code})`;
  }
  return `exit status ${code}`;
}

/** Keeps the last `max` bytes written to it. */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly max: number) {}
  push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
    while (this.size - (this.chunks[0]?.length ?? 0) >= this.max && this.chunks.length > 1) {
      this.size -= this.chunks.shift()!.length;
    }
  }
  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.max)).toString('utf8').trim();
  }
}

export class ServeClient {
  readonly child: ServeProcess;
  readonly label: string;
  private readonly opts: ServeClientOptions;
  private readonly stderr: TailBuffer;
  private queue: Pending[] = [];
  private current: (Pending & { timer: NodeJS.Timeout }) | undefined;
  private buf: Buffer = Buffer.alloc(0);
  private dead = false;
  private deathReason: string | undefined;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;
  private killing: Promise<void> | undefined;
  /** set when the client itself killed the process (timeout/close), so its death is not a function error */
  private killedByUs = false;
  /** number of requests answered */
  answered = 0;

  private constructor(child: ServeProcess, opts: ServeClientOptions) {
    this.child = child;
    this.opts = opts;
    this.label = opts.label ?? 'serve process';
    this.stderr = new TailBuffer(opts.stderrTailBytes ?? 2048);
    child.stdout!.on('data', (d: Buffer) => this.onData(d));
    child.stderr!.on('data', (d: Buffer) => this.stderr.push(d));
    child.stdin!.on('error', () => {
      /* EPIPE when the process died; reported through 'exit' */
    });
    this.exited = new Promise<void>((resolve) => {
      let settled = false;
      const done = (): void => {
        if (settled) return;
        settled = true;
        this.onDeath();
        resolve();
      };
      child.on('exit', (code: number | null, signal: NodeJS.Signals | null) => {
        this.exitInfo = { code, signal };
        // let the remaining stdout arrive ('close'), but do not hang if a grandchild holds the pipe
        setTimeout(done, 300).unref();
      });
      child.on('close', done);
      child.on('error', (e: Error) => {
        this.deathReason ??= `${this.label}: ${e.message}`;
        if (child.exitCode === null && child.signalCode === null && child.pid === undefined) done();
      });
    });
  }

  /** Spawns `command args` with a clean environment `env` and resolves once the process is running. */
  static async start(
    command: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv,
    opts: ServeClientOptions = {},
  ): Promise<ServeClient> {
    const child = spawn(command, args, {
      env,
      cwd: opts.cwd,
      uid: opts.uid,
      gid: opts.gid,
      detached: opts.detached,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    // listening before anything else: when spawn fails early (EMFILE: no fds for the pipes) the child has no
    // stdio, and an 'error' nobody listens to would crash the harness
    const label = opts.label ?? command;
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (e) => reject(new InvokeError('unavailable', `${label}: cannot start ${command}: ${e.message}`)));
    });
    if (!child.stdin || !child.stdout || !child.stderr) {
      await spawned;
      child.kill('SIGKILL');
      throw new InvokeError('unavailable', `${label}: cannot start ${command}: no stdio pipes`);
    }
    const client = new ServeClient(child, opts);
    await spawned;
    return client;
  }

  /** Wraps a process that is already running (its stdio speaks the serve protocol). */
  static adopt(proc: ServeProcess, opts: ServeClientOptions = {}): ServeClient {
    return new ServeClient(proc, opts);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** resolves once the process has exited and its pipes closed */
  get closed(): Promise<void> {
    return this.exited;
  }

  /** false once the process died, was killed, or is being closed */
  get alive(): boolean {
    return !this.dead && !this.killing;
  }

  /** Last bytes the process wrote to stderr. */
  stderrTail(): string {
    return this.stderr.text();
  }

  /** Sends one request; queued behind earlier ones. Rejects with InvokeError 'timeout' (process killed) or 'function-error'. */
  request(input: Uint8Array, timeoutMs: number): Promise<ServeResponse> {
    return new Promise<ServeResponse>((resolve, reject) => {
      if (!this.alive) {
        reject(new InvokeError('unavailable', this.deathReason ?? `${this.label} is not running`));
        return;
      }
      if (input.length > 0xffffffff) {
        reject(new InvokeError('bad-request', `${this.label}: input of ${input.length} bytes does not fit a u32 frame`));
        return;
      }
      this.queue.push({ input, timeoutMs, resolve, reject });
      this.pump();
    });
  }

  /** Ends stdin (the process exits at EOF); kills it if it has not exited after `graceMs`. Never rejects. */
  async close(graceMs = 1000): Promise<void> {
    if (!this.dead) {
      this.failQueued(new InvokeError('unavailable', `${this.label} was closed`));
      try {
        this.child.stdin!.end();
      } catch {
        /* already closed */
      }
      const t = setTimeout(() => void this.kill(), graceMs);
      await this.exited;
      clearTimeout(t);
    }
    await this.killing;
  }

  /** Kills the process (with the configured kill hook) and waits for it to be gone. Never rejects. */
  kill(): Promise<void> {
    if (!this.killing) {
      this.killedByUs = true;
      const hook = this.opts.kill;
      this.killing = (async () => {
        try {
          if (hook) await hook(this);
          else if (!this.dead) this.child.kill('SIGKILL');
        } catch {
          if (!this.dead) this.child.kill('SIGKILL');
        }
        // a hook that killed the container makes `runc run` exit; make sure of it
        const t = setTimeout(() => {
          if (!this.dead) this.child.kill('SIGKILL');
        }, 2000);
        await this.exited;
        clearTimeout(t);
      })();
    }
    return this.killing;
  }

  private pump(): void {
    if (this.current || this.dead || this.killing) return;
    const next = this.queue.shift();
    if (!next) return;
    const timer = setTimeout(() => this.onTimeout(), next.timeoutMs);
    this.current = { ...next, timer };
    const header = Buffer.alloc(4);
    header.writeUInt32LE(next.input.length, 0);
    this.child.stdin!.write(header);
    if (next.input.length > 0) this.child.stdin!.write(next.input);
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    for (;;) {
      if (this.buf.length < 8) return;
      const len = this.buf.readUInt32LE(0);
      if (this.buf.length < 8 + len) return;
      const status = this.buf.readInt32LE(4);
      const output = new Uint8Array(this.buf.subarray(8, 8 + len));
      this.buf = this.buf.subarray(8 + len);
      const cur = this.current;
      if (!cur) {
        this.deathReason = `${this.label}: protocol error: a response arrived with no request pending`;
        void this.kill();
        return;
      }
      clearTimeout(cur.timer);
      this.current = undefined;
      this.answered++;
      cur.resolve({ status, output });
      this.pump();
    }
  }

  private onTimeout(): void {
    const cur = this.current;
    if (!cur) return;
    this.current = undefined;
    this.deathReason = `${this.label} was killed after a request timed out (${cur.timeoutMs} ms)`;
    cur.reject(new InvokeError('timeout', `${this.label}: no response within ${cur.timeoutMs} ms; process killed`));
    this.failQueued(new InvokeError('unavailable', this.deathReason));
    void this.kill();
  }

  private onDeath(): void {
    if (this.dead) return;
    this.dead = true;
    const how = this.exitInfo
      ? describeExit(this.exitInfo.code, this.exitInfo.signal, this.opts.statusEncodesSignal)
      : 'failed';
    const tail = this.stderr.text();
    const msg = `${this.label} ${how}${tail ? `; stderr: ${tail}` : ''}`;
    this.deathReason ??= msg;
    const cur = this.current;
    this.current = undefined;
    if (cur) {
      clearTimeout(cur.timer);
      cur.reject(
        this.killedByUs
          ? new InvokeError('unavailable', `${this.label} was killed while a request was pending`)
          : new InvokeError('function-error', `${msg} (during a request)`),
      );
    }
    this.failQueued(new InvokeError('unavailable', this.deathReason));
  }

  private failQueued(e: InvokeError): void {
    const q = this.queue;
    this.queue = [];
    for (const p of q) p.reject(e);
  }
}

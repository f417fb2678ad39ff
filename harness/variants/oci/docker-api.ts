// The few Docker Engine API calls the `docker` variant makes, over the daemon's Unix socket (no CLI in
// the measured path), and a container's attached stdio as a process-like object for ServeClient.
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { Socket } from 'node:net';
import { PassThrough } from 'node:stream';

export interface ApiResponse {
  status: number;
  body: Buffer;
}

const agents = new Map<string, http.Agent>();
/** one keep-alive agent per socket: a platform's client keeps its connections to the daemon */
function agentFor(socket: string): http.Agent {
  let a = agents.get(socket);
  if (!a) {
    a = new http.Agent({ keepAlive: true, maxSockets: 64 });
    agents.set(socket, a);
  }
  return a;
}

/** Closes the idle keep-alive connections to `socket` (teardown). */
export function closeAgent(socket: string): void {
  agents.get(socket)?.destroy();
  agents.delete(socket);
}

export function dockerRequest(socket: string, method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    // a Buffer goes as it is (an image tar), anything else as JSON
    const raw = Buffer.isBuffer(body);
    const data = body === undefined ? undefined : raw ? body : Buffer.from(JSON.stringify(body));
    const req = http.request(
      {
        socketPath: socket,
        method,
        path,
        agent: agentFor(socket),
        headers: { Host: 'docker', ...(data ? { 'Content-Type': raw ? 'application/x-tar' : 'application/json', 'Content-Length': data.length } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`docker API ${method} ${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** A request whose non-2xx answer is an error carrying the daemon's own message. */
export async function dockerCall<T = unknown>(socket: string, method: string, path: string, body?: unknown, timeoutMs?: number): Promise<T> {
  const r = await dockerRequest(socket, method, path, body, timeoutMs);
  const text = r.body.toString('utf8');
  if (r.status < 200 || r.status >= 300) {
    let msg = text.trim();
    try {
      msg = (JSON.parse(text) as { message?: string }).message ?? msg;
    } catch {
      /* not JSON */
    }
    throw new Error(`docker API ${method} ${path.split('?')[0]}: ${r.status} ${msg}`);
  }
  return (text ? JSON.parse(text) : undefined) as T;
}

/**
 * POST /containers/<id>/wait?condition=next-exit: `registered` resolves once the daemon sent the response
 * header (the wait is in place, so the container may be started), `exited` with the exit status.
 */
export function waitExit(socket: string, id: string): { registered: Promise<void>; exited: Promise<{ StatusCode: number }> } {
  let onHeader!: () => void;
  let onHeaderFail!: (e: Error) => void;
  const registered = new Promise<void>((res, rej) => ((onHeader = res), (onHeaderFail = rej)));
  const exited = new Promise<{ StatusCode: number }>((resolve, reject) => {
    const fail = (e: Error): void => {
      onHeaderFail(e);
      reject(e);
    };
    // its own connection: it stays open for the container's whole life
    const req = http.request({ socketPath: socket, method: 'POST', path: `/containers/${id}/wait?condition=next-exit`, headers: { Host: 'docker' } }, (res) => {
      onHeader();
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          const j = JSON.parse(text) as { StatusCode: number; Error?: { Message?: string } | null };
          if (res.statusCode !== 200) throw new Error(`${res.statusCode} ${text.trim()}`);
          resolve(j);
        } catch (e) {
          reject(new Error(`docker wait ${id}: ${(e as Error).message}`));
        }
      });
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end();
  });
  registered.catch(() => {});
  return { registered, exited };
}

/** Hijacks POST /containers/<id>/attach (stdin, stdout, stderr streams): the raw connection. */
export function attach(socket: string, id: string, timeoutMs = 30_000): Promise<{ conn: Socket; head: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      socketPath: socket,
      method: 'POST',
      path: `/containers/${id}/attach?stream=1&stdin=1&stdout=1&stderr=1`,
      headers: { Host: 'docker', Connection: 'Upgrade', Upgrade: 'tcp' },
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`docker attach ${id}: no answer within ${timeoutMs} ms`)));
    req.on('upgrade', (_res, conn, head) => {
      conn.setTimeout(0);
      resolve({ conn, head });
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => reject(new Error(`docker attach ${id}: ${res.statusCode} ${Buffer.concat(chunks).toString().trim()}`)));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Splits Docker's multiplexed stream (8-byte header: stream type, 3 zero bytes, u32be length). */
export class Demux {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly onFrame: (stream: number, data: Buffer) => void) {}
  push(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    while (this.buf.length >= 8) {
      const len = this.buf.readUInt32BE(4);
      if (this.buf.length < 8 + len) return;
      this.onFrame(this.buf[0]!, this.buf.subarray(8, 8 + len));
      this.buf = this.buf.subarray(8 + len);
    }
  }
}

/**
 * A started container's attached stdio as ServeClient expects of a child process: stdin writes to the
 * hijacked connection (end() half-closes it, which closes the container's stdin), stdout/stderr are
 * demultiplexed, 'exit' comes from /wait, kill() goes through the API.
 */
export class AttachedContainer extends EventEmitter {
  readonly stdin: Socket;
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  /** the container's init pid (from inspect), for memory measurement */
  pid: number | undefined;

  constructor(
    private readonly socket: string,
    readonly id: string,
    conn: Socket,
    head: Buffer,
    waited: Promise<{ StatusCode: number }>,
  ) {
    super();
    this.stdin = conn;
    const demux = new Demux((s, d) => (s === 2 ? this.stderr : this.stdout).write(d));
    if (head.length) demux.push(head);
    conn.on('data', (d: Buffer) => demux.push(d));
    let streamsDone = false;
    let exited = false;
    const maybeClose = (): void => {
      if (streamsDone && exited) this.emit('close', this.exitCode, null);
    };
    conn.on('close', () => {
      this.stdout.end();
      this.stderr.end();
      streamsDone = true;
      maybeClose();
    });
    conn.on('error', () => {
      /* the container died: reported through /wait */
    });
    waited.then(
      (w) => {
        this.exitCode = w.StatusCode;
        exited = true;
        this.emit('exit', w.StatusCode, null);
        maybeClose();
      },
      (e: Error) => {
        this.emit('error', e);
        this.exitCode = -1;
        exited = true;
        this.emit('exit', -1, null);
        conn.destroy();
        maybeClose();
      },
    );
  }

  kill(): boolean {
    void dockerRequest(this.socket, 'POST', `/containers/${this.id}/kill?signal=KILL`).catch(() => {});
    return true;
  }
}

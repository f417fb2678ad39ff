// Idle instances held by an executor process (agent-main --idle-control), the process that holds a
// variant's instances in production, started where the caller places it (the density cell's cgroup).
// Lines on its stdin ask it to hold one more instance; a step that overruns its timeout kills it.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { agentMain } from '../paths.js';
import { InvokeError, type IdleInstances, type IdleOptions, type InvokeErrorKind } from './variant.js';

export interface IdleExecutorSpec extends IdleOptions {
  /** the variant plug-in the executor loads (it must implement holdIdle) */
  variant: string;
  fn: string;
  memoryLimitMiB: number;
  /** a folder for its socket, removed on close */
  workDir: string;
  /** what holds the instances and what they share, for the notes */
  method: string;
}

const KINDS = new Set(['function-error', 'timeout', 'memory-limit', 'invalid-module', 'unavailable', 'bad-request']);

export async function startIdleExecutor(spec: IdleExecutorSpec): Promise<IdleInstances> {
  fs.mkdirSync(spec.workDir, { recursive: true });
  const dir = fs.mkdtempSync(path.join(spec.workDir, 'idle-'));
  const argv = [agentMain, '--variant', spec.variant, '--listen', `unix:${path.join(dir, 'x.sock')}`, '--memory-mib', String(spec.memoryLimitMiB), '--work-dir', dir, '--idle-control'];
  const w = spec.placement.wrap(process.execPath, argv);
  const child: ChildProcess = spawn(w.command, w.args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const label = `${spec.variant} executor holding ${spec.fn}`;
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-1000);
  });
  child.stdin!.on('error', () => {
    /* it died: the exit says how */
  });
  let exit: string | undefined;
  const waiting: ((line: string | null) => void)[] = [];
  const exited = new Promise<void>((res) =>
    child.once('exit', (code, sig) => {
      exit = sig ? `killed by ${sig}` : `exit status ${code}`;
      for (const w of waiting.splice(0)) w(null);
      res();
    }),
  );
  const lines = readline.createInterface({ input: child.stdout! });
  const queued: string[] = [];
  lines.on('line', (l) => {
    const w = waiting.shift();
    if (w) w(l);
    else queued.push(l);
  });
  const tail = (): string => (stderr.trim() ? `; stderr: ${stderr.trim().slice(-400)}` : '');
  /** the next line, or null when the executor exited, or 'timeout' */
  const next = (ms: number): Promise<string | null | 'timeout'> => {
    if (queued.length) return Promise.resolve(queued.shift()!);
    if (exit !== undefined) return Promise.resolve(null);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        waiting.splice(waiting.indexOf(f), 1);
        resolve('timeout');
      }, ms);
      const f = (l: string | null) => {
        clearTimeout(t);
        resolve(l);
      };
      waiting.push(f);
    });
  };
  const kill = async (): Promise<void> => {
    if (exit === undefined) child.kill('SIGKILL');
    await exited;
  };
  let closed = false;
  const close = async (): Promise<void> => {
    if (!closed) {
      closed = true;
      child.stdin!.end(); // the executor stops when its stdin closes
      const t = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(t);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };

  const ready = await next(spec.timeoutMs);
  if (ready === 'timeout' || ready === null || !ready.startsWith('READY ')) {
    await kill();
    await close();
    if (ready === 'timeout') throw new InvokeError('timeout', `${label}: not ready within ${spec.timeoutMs} ms; killed${tail()}`);
    throw new InvokeError('unavailable', `${label}: ${ready === null ? `exited (${exit}) before it was ready` : `said "${ready.slice(0, 200)}" instead of READY`}${tail()}`);
  }
  let held = 0;
  return {
    method: spec.method,
    async add(input) {
      if (exit !== undefined) throw new InvokeError('unavailable', `${label}: the executor is gone (${exit})${tail()}`);
      child.stdin!.write(`hold ${spec.fn} ${Buffer.from(input).toString('base64')}\n`);
      const l = await next(spec.timeoutMs);
      if (l === 'timeout') {
        await kill();
        throw new InvokeError('timeout', `${label}: instance #${held + 1} not ready within ${spec.timeoutMs} ms; executor killed`);
      }
      if (l === null) throw new InvokeError('unavailable', `${label}: the executor died starting instance #${held + 1} (${exit})${tail()}`);
      const m = /^(HELD|FAILED) ?(\S*) ?(.*)$/.exec(l);
      if (m?.[1] === 'HELD') {
        held++;
        return new Uint8Array(Buffer.from(m[2]!, 'base64'));
      }
      if (m?.[1] === 'FAILED') throw new InvokeError((KINDS.has(m[2]!) ? m[2] : 'function-error') as InvokeErrorKind, `${label}: ${m[3]}`);
      throw new InvokeError('bad-request', `${label}: unexpected answer "${l.slice(0, 200)}"`);
    },
    async alive() {
      return exit === undefined ? held : 0;
    },
    close,
  };
}

// The one place platform processes are started (agents of every node kind, gateways): a command,
// optionally pinned (taskset) and born inside a cgroup, whose first stdout line is `READY {json}`.
// Its stdin is a pipe: the started process's lifeline (closing it, or our death, stops it).
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';

export interface ProcessLaunch {
  cmd: string;
  args: readonly string[];
  /** e.g. "agent wasm-1 (local)": names the process in every error */
  label: string;
  /** taskset -c CPUS */
  cpus?: string;
  /** absolute cgroup v2 directory the process is in before its first instruction */
  cgroup?: string;
  env?: NodeJS.ProcessEnv;
  /** stderr: kept as a tail for errors (default), or inherited */
  stderr?: 'tail' | 'inherit';
  readyTimeoutMs?: number;
}

export interface StartedProcess<T> {
  child: ChildProcess;
  ready: T;
  /** the last lines it wrote to stderr (with stderr: 'tail') */
  stderrTail(): string;
  /** resolves with "code N" or "signal S" once it exited */
  exited: Promise<string>;
  /** closes its stdin (its lifeline), then SIGTERM, then SIGKILL, each after `graceMs`; resolves once it exited */
  stop(graceMs?: number): Promise<void>;
}

// inside the SoftRoCE guest the CPU may be emulated (TCG): a Node process takes seconds to start there
const READY_TIMEOUT_MS = process.env.FXH_GUEST ? 180_000 : 20_000;

/** The command line after the taskset and cgroup wrappers. */
export function wrapCommand(l: Pick<ProcessLaunch, 'cmd' | 'args' | 'cpus' | 'cgroup'>): { cmd: string; args: string[] } {
  let cmd = l.cmd;
  let args = [...l.args];
  if (l.cpus) [cmd, args] = ['taskset', ['-c', l.cpus, cmd, ...args]];
  // the shell joins the cgroup, then execs: every socket the process opens is born there
  if (l.cgroup) [cmd, args] = ['/bin/sh', ['-c', 'echo $$ > "$0/cgroup.procs" || exit 125; exec "$@"', l.cgroup, cmd, ...args]];
  return { cmd, args };
}

export async function startProcess<T>(l: ProcessLaunch): Promise<StartedProcess<T>> {
  const { cmd, args } = wrapCommand(l);
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', l.stderr === 'inherit' ? 'inherit' : 'pipe'], env: l.env ?? process.env });
  const tail: string[] = [];
  child.stderr?.on('data', (d: Buffer) => {
    tail.push(d.toString());
    if (tail.length > 20) tail.shift();
  });
  child.stdin!.on('error', () => {}); // EPIPE when it is already gone
  const stderrTail = () => tail.join('').slice(-2000).trim();
  const exited = new Promise<string>((res) => child.once('exit', (code, sig) => res(sig ? `signal ${sig}` : `code ${code}`)));
  const timeoutMs = l.readyTimeoutMs ?? READY_TIMEOUT_MS;
  let ready: T;
  try {
    ready = await new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${l.label} did not start within ${timeoutMs / 1000} s${stderrTail() ? `: ${stderrTail()}` : ''}`)), timeoutMs);
      child.once('error', (e) => {
        clearTimeout(t);
        reject(new Error(`${l.label}: cannot run ${cmd}: ${e.message}`));
      });
      void exited.then((how) => {
        clearTimeout(t);
        // let the stderr pipe drain, so the reason is in the message
        setTimeout(() => reject(new Error(`${l.label} exited (${how}) before it was ready${stderrTail() ? `: ${stderrTail()}` : ''}`)), 20);
      });
      readline.createInterface({ input: child.stdout! }).once('line', (line) => {
        clearTimeout(t);
        if (!line.startsWith('READY ')) return reject(new Error(`${l.label} said "${line.slice(0, 200)}" instead of READY`));
        try {
          resolve(JSON.parse(line.slice(6)) as T);
        } catch (e) {
          reject(new Error(`${l.label}: its READY line is not JSON: ${(e as Error).message}`));
        }
      });
    });
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    throw e;
  }
  child.stdout!.resume(); // later output must not fill the pipe and block it
  let stopping: Promise<void> | null = null;
  return {
    child,
    ready,
    stderrTail,
    exited,
    stop(graceMs = 5_000) {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const within = (ms: number) => Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
        child.stdin!.end();
        if (await within(graceMs)) return;
        child.kill('SIGTERM');
        if (await within(graceMs)) return;
        child.kill('SIGKILL');
        await exited;
      })();
      return stopping;
    },
  };
}

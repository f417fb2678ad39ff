// The kernel hop alone (hop-pingpong.c): a native blocking ping-pong between two processes of an
// arm's cgroup, so the saving of the fast path in the kernel can be told apart from the time the
// platform's Node processes spend around it. Built with cc on first use into a scratch folder.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { repoRoot } from '../paths.js';
import { spawnInCgroup } from './cgroup.js';
import { scratchDir } from '../platform/scratch.js';

const SOURCE = path.join(repoRoot, 'harness', 'bpf', 'hop-pingpong.c');

/** Compiles the ping-pong; returns the binary, or the reason it cannot. */
export function buildHop(dir: string = scratchDir('hop')): { bin: string } | { error: string } {
  const bin = path.join(dir, 'hop-pingpong');
  const cc = process.env.CC ?? 'cc';
  const r = spawnSync(cc, ['-O2', '-o', bin, SOURCE], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return { error: `cannot build ${path.basename(SOURCE)} with ${cc}: ${(r.stderr || r.error?.message || '').trim().slice(0, 300)} (apt-get install gcc)` };
  return { bin };
}

export interface HopResult {
  rttNs: number[];
  /** messages the client wrote (warm-up included); the server echoes each one */
  clientSent: number;
}

/** One ping-pong block in `cgroupPath`: server and client both inside, pinned to `cpus`. */
export async function runHop(bin: string, cgroupPath: string, o: { size: number; warmup: number; n: number; cpus?: string }): Promise<HopResult> {
  const wrap = (args: string[]): [string, string[]] => (o.cpus ? ['taskset', ['-c', o.cpus, bin, ...args]] : [bin, args]);
  const [sc, sa] = wrap(['server']);
  const server = spawnInCgroup(cgroupPath, sc, sa, { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<string>((resolve, reject) => {
      server.once('exit', (c) => reject(new Error(`hop server exited (${c})`)));
      readline.createInterface({ input: server.stdout! }).once('line', resolve);
    });
    const [cc, ca] = wrap(['client', port, String(o.size), String(o.warmup), String(o.n)]);
    const client = spawnInCgroup(cgroupPath, cc, ca, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    client.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => client.once('exit', (c) => r(c)));
    if (code !== 0) throw new Error(`hop client exited with ${code}`);
    const lines = out.trim().split('\n');
    const last = lines.pop() ?? '';
    const m = /^sent (\d+)$/.exec(last);
    if (!m) throw new Error(`hop client said "${last}"`);
    return { rttNs: lines.map(Number), clientSent: Number(m[1]) };
  } finally {
    if (server.exitCode === null) {
      const gone = new Promise<void>((r) => server.once('exit', () => r()));
      server.kill('SIGKILL');
      await gone;
    }
  }
}

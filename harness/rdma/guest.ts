// A throwaway QEMU guest that runs one command where SoftRoCE exists: the host's kernel cannot provide
// rdma_rxe, Debian's stock kernel in a guest can. The guest sees the host's root read-only (writes go
// to a tmpfs overlay) and the run's folder writable at its own path, so the command runs this very
// checkout and leaves its results where the host reads them. Inside: two namespaces fxa/fxb joined by
// a veth, each with an rxe device (guest-net.sh). QEMU dies with this process (pdeathsig), on a
// timeout, or on abort; the guest's console log is kept in <outDir>/guest/.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildDir, repoRoot } from '../paths.js';

export type Accel = 'kvm' | 'tcg';

export interface GuestRunOptions {
  /** argv run inside the guest as root */
  command: string[];
  /** a host folder (it must exist); writable in the guest at the same path */
  outDir: string;
  /** the whole run, boot included */
  timeoutMs: number;
  env?: Record<string, string>;
  /** default: the repository root */
  cwd?: string;
  /** set up fxa/fxb with their rxe devices first (default true) */
  network?: boolean;
  signal?: AbortSignal;
  memoryMiB?: number;
  cpus?: number;
  hostfwd?: HostForward;
}

/** a host port on 127.0.0.1 forwarded to a guest port (QEMU user-mode networking; the guest is 10.0.2.15) */
export interface HostForward {
  hostPort: number;
  guestPort: number;
}

export interface GuestRunResult {
  /** the command's exit code; null when it did not finish */
  exitCode: number | null;
  /** the command's stdout and stderr */
  output: string;
  consoleLogPath: string;
  accel: Accel;
  /** why this accelerator */
  accelReason: string;
  /** spawn to the guest's init reaching the command */
  bootMs: number;
  wallMs: number;
  kernel: string;
}

export class GuestError extends Error {
  constructor(
    message: string,
    readonly consoleLogPath: string,
  ) {
    super(message);
  }
}

/** where the bootstrap puts the kernel and initramfs (FXH_GUEST_IMAGE_DIR elsewhere) */
const imageDir = process.env.FXH_GUEST_IMAGE_DIR ?? path.join(buildDir, 'guest');
/** a marker in QEMU's command line, so that leak checks and sweeps know our guests */
export const GUEST_MARK = 'fxh-guest';

/** null when a guest can boot here, else why not */
export function guestUnavailable(): string | null {
  if (!fs.existsSync(path.join(imageDir, 'initramfs.cpio.gz')) || !fs.existsSync(path.join(imageDir, 'vmlinuz')))
    return `no guest image in ${path.relative(repoRoot, imageDir)} (the bootstrap builds it: node harness/setup/guest-image.mjs)`;
  if (spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { stdio: 'ignore' }).status !== 0) return 'qemu-system-x86_64 is not installed (Debian package qemu-system-x86)';
  if (spawnSync('sh', ['-c', 'command -v setpriv'], { stdio: 'ignore' }).status !== 0) return 'setpriv (util-linux) is missing: without it a guest could outlive a killed run';
  return null;
}

export function guestKernel(): string {
  try {
    return JSON.parse(fs.readFileSync(path.join(imageDir, 'stamp.json'), 'utf8')).kernel as string;
  } catch {
    return 'unknown';
  }
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function qemuArgs(accel: Accel, outDir: string, opts: { memoryMiB: number; cpus: number; probe: boolean; hostfwd?: HostForward }): string[] {
  const args = [
    '--pdeathsig', 'KILL', '--',
    'qemu-system-x86_64', '-name', GUEST_MARK,
    '-accel', accel, '-cpu', accel === 'kvm' ? 'host' : 'max',
    '-m', String(opts.memoryMiB), '-smp', String(opts.cpus),
    '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot',
    // user-mode networking only when a port is forwarded (no option ROM: none is installed, none is needed)
    ...(opts.hostfwd
      ? ['-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${opts.hostfwd.hostPort}-:${opts.hostfwd.guestPort}`, '-device', 'virtio-net-pci,netdev=n0,romfile=']
      : ['-nic', 'none']),
    '-kernel', path.join(imageDir, 'vmlinuz'), '-initrd', path.join(imageDir, 'initramfs.cpio.gz'),
    '-append', `console=ttyS0 quiet panic=-1 fxh.out=${outDir}${opts.probe ? ' fxh.probe=1' : ''}`,
  ];
  if (!opts.probe) {
    args.push('-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap');
    args.push('-virtfs', `local,path=${outDir},mount_tag=outshare,security_model=none,multidevs=remap`);
  }
  return args;
}

interface Boot {
  console: string;
  upMs: number | null;
  code: number | null;
  why: string | null;
}

/** runs QEMU until it exits, the deadline passes or the signal aborts; the console goes to logPath */
function boot(args: string[], logPath: string, timeoutMs: number, signal?: AbortSignal, upLine = 'fxh-guest: up'): Promise<Boot> {
  return startBoot(args, logPath, timeoutMs, signal, upLine).done;
}

function startBoot(args: string[], logPath: string, timeoutMs: number, signal?: AbortSignal, upLine = 'fxh-guest: up'): { child: ChildProcess; done: Promise<Boot> } {
  const t0 = performance.now();
  const log = fs.createWriteStream(logPath);
  const child = spawn('setpriv', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const done = new Promise<Boot>((resolve) => {
    let text = '';
    let upMs: number | null = null;
    let why: string | null = null;
    const onData = (b: Buffer) => {
      log.write(b);
      if (text.length < 1 << 20) text += b.toString('latin1');
      if (upMs === null && text.includes(upLine)) upMs = performance.now() - t0;
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const kill = (reason: string) => {
      why ??= reason;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill(`the guest did not finish within ${timeoutMs} ms`), timeoutMs);
    const onAbort = () => kill('interrupted');
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    child.on('error', (e) => kill(`qemu: ${e.message}`));
    child.on('close', (code) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      log.end(() => resolve({ console: text, upMs, code, why }));
    });
  });
  return { child, done };
}

/** KVM where it boots, else TCG; `FXH_GUEST_ACCEL` forces one. Nested KVM here hangs at boot, so a
 * short probe decides; its verdict is kept in build/guest/accel.json for this host kernel, QEMU and
 * guest kernel (delete the file to probe again). */
export async function chooseAccel(scratch: string): Promise<{ accel: Accel; reason: string }> {
  const forced = process.env.FXH_GUEST_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return { accel: forced, reason: `forced by FXH_GUEST_ACCEL=${forced}` };
  if (!fs.existsSync('/dev/kvm')) return { accel: 'tcg', reason: 'no /dev/kvm' };
  const key = `${os.release()} ${spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]} ${guestKernel()}`;
  const cache = path.join(imageDir, 'accel.json');
  try {
    const c = JSON.parse(fs.readFileSync(cache, 'utf8'));
    if (c.key === key && (c.accel === 'kvm' || c.accel === 'tcg')) return { accel: c.accel, reason: `${c.reason} (probed ${c.at})` };
  } catch {}
  const log = path.join(scratch, 'kvm-probe-console.log');
  const probeMs = 20_000;
  const r = await boot(qemuArgs('kvm', scratch, { memoryMiB: 256, cpus: 1, probe: true }), log, probeMs);
  const choice: { accel: Accel; reason: string } =
    r.upMs !== null
      ? { accel: 'kvm', reason: `KVM booted a probe guest in ${Math.round(r.upMs)} ms` }
      : { accel: 'tcg', reason: `KVM did not boot a probe guest within ${probeMs / 1000} s (${r.why ?? `qemu exited ${r.code}`}; last console line: ${lastLines(r.console, 1) || 'none'}), so software emulation (TCG)` };
  fs.writeFileSync(cache, JSON.stringify({ key, ...choice, at: new Date().toISOString() }) + '\n');
  return choice;
}

function lastLines(s: string, n: number): string {
  return s
    .replace(/\x1b\[[0-9;?]*[a-zA-Z]|\x1bc/g, '')
    .split(/\r?\n/)
    .filter((l) => l.trim())
    .slice(-n)
    .join(' | ');
}

export async function runInGuest(opts: GuestRunOptions): Promise<GuestRunResult> {
  return (await startGuest(opts)).done;
}

export interface StartedGuest {
  /** QEMU (under setpriv) */
  child: ChildProcess;
  accel: Accel;
  /** the command's output file in the run folder (it grows while the command runs) */
  outputPath: string;
  /** settles as runInGuest does */
  done: Promise<GuestRunResult>;
}

/** Boots the guest and starts the command; for a command that serves (a node agent) rather than ends. */
export async function startGuest(opts: GuestRunOptions): Promise<StartedGuest> {
  const unavailable = guestUnavailable();
  const dir = path.join(opts.outDir, 'guest');
  fs.mkdirSync(dir, { recursive: true });
  const consoleLogPath = path.join(dir, 'console.log');
  if (unavailable) throw new GuestError(`cannot boot a guest: ${unavailable}`, consoleLogPath);
  const t0 = performance.now();
  const { accel, reason: accelReason } = await chooseAccel(dir);
  for (const f of ['output.txt', 'exit-code']) fs.rmSync(path.join(dir, f), { force: true });
  const env = { FXH_GUEST: '1', FXH_GUEST_SUBSTRATE: `softroce-guest-${accel}`, PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', ...opts.env };
  const script = [
    '# written by harness/rdma/guest.ts; run inside the guest by its /init',
    ...Object.entries(env).map(([k, v]) => `export ${k}=${q(v)}`),
    `cd ${q(opts.cwd ?? repoRoot)} || exit 97`,
    opts.network === false ? '' : `. ${q(path.join(repoRoot, 'harness', 'rdma', 'guest-net.sh'))} || { echo 'fxh-guest: network setup failed'; exit 98; }`,
    opts.hostfwd ? 'ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 || { echo "fxh-guest: user network setup failed"; exit 98; }' : '',
    `exec ${opts.command.map(q).join(' ')}`,
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'command.sh'), script + '\n');
  const remaining = Math.max(1, opts.timeoutMs - (performance.now() - t0));
  const b = startBoot(qemuArgs(accel, path.resolve(opts.outDir), { memoryMiB: opts.memoryMiB ?? 2048, cpus: opts.cpus ?? 2, probe: false, hostfwd: opts.hostfwd }), consoleLogPath, remaining, opts.signal);
  const done = b.done.then((r) => {
    const read = (f: string) => {
      try {
        return fs.readFileSync(path.join(dir, f), 'utf8');
      } catch {
        return null;
      }
    };
    const output = read('output.txt') ?? '';
    const code = read('exit-code');
    const failed = /fxh-guest: failed: (.*)/.exec(r.console)?.[1];
    if (r.upMs === null || failed) {
      const why = failed ?? r.why ?? `qemu exited with ${r.code} before the guest's init ran the command`;
      throw new GuestError(`the guest did not boot: ${why}; last console lines: ${lastLines(r.console, 4) || '(none)'}; console log: ${consoleLogPath}`, consoleLogPath);
    }
    if (code === null && r.why) throw new GuestError(`guest run ${r.why === 'interrupted' ? 'interrupted' : 'failed'}: ${r.why}; the command's output so far: ${output.slice(-500) || '(none)'}; console log: ${consoleLogPath}`, consoleLogPath);
    return {
      exitCode: code === null ? null : Number(code.trim()),
      output,
      consoleLogPath,
      accel,
      accelReason,
      bootMs: r.upMs,
      wallMs: performance.now() - t0,
      kernel: guestKernel(),
    };
  });
  return { child: b.child, accel, outputPath: path.join(dir, 'output.txt'), done };
}

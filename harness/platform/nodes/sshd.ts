// A throwaway sshd inside one of our network namespaces, to test the ssh node kind on one machine:
// its own host key, client key and authorized_keys in a scratch folder, listening on the
// namespace's address only, stopped (and the folder removed) by stop(). If we die, the fabric's
// reaper kills it with the namespace.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { scratchDir } from '../scratch.js';

export interface TestSshd {
  port: number;
  /** the client's private key */
  identity: string;
  /** a known_hosts file holding the server's key for [address]:port */
  knownHosts: string;
  pid: number;
  stop(): Promise<void>;
}

export const SSHD = '/usr/sbin/sshd';

export function sshdAvailable(): { ok: true } | { ok: false; reason: string } {
  if (!fs.existsSync(SSHD)) return { ok: false, reason: `${SSHD} is missing (Debian openssh-server; bootstrap installs it)` };
  if (spawnSync('ssh', ['-V']).error) return { ok: false, reason: 'the ssh client is missing (Debian openssh-client)' };
  return { ok: true };
}

function keygen(file: string): string {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'fxh-test', '-f', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen: ${(r.stderr || r.error?.message || '').trim()}`);
  return fs.readFileSync(`${file}.pub`, 'utf8').trim();
}

export async function startSshd(ns: string, address: string, port = 2222): Promise<TestSshd> {
  const why = sshdAvailable();
  if (!why.ok) throw new Error(why.reason);
  const dir = scratchDir('sshd');
  try {
    const hostPub = keygen(path.join(dir, 'host_key'));
    fs.writeFileSync(path.join(dir, 'authorized_keys'), `${keygen(path.join(dir, 'client_key'))}\n`, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'known_hosts'), `[${address}]:${port} ${hostPub.split(' ').slice(0, 2).join(' ')}\n`);
    const config = [
      `ListenAddress ${address}:${port}`,
      `HostKey ${path.join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'PidFile none',
      'LogLevel ERROR',
    ];
    fs.writeFileSync(path.join(dir, 'sshd_config'), `${config.join('\n')}\n`);
    fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // sshd's privilege separation folder
    const child = spawn('ip', ['netns', 'exec', ns, SSHD, '-D', '-e', '-f', path.join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    // up once something accepts on the port inside the namespace
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`sshd in ${ns} exited (${child.exitCode}): ${err.trim()}`);
      const probe = spawnSync('ip', ['netns', 'exec', ns, 'bash', '-c', `exec 3<>/dev/tcp/${address}/${port}`]);
      if (probe.status === 0) break;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`sshd in ${ns} did not listen on ${address}:${port} within 10 s: ${err.trim()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return {
      port,
      identity: path.join(dir, 'client_key'),
      knownHosts: path.join(dir, 'known_hosts'),
      pid: child.pid!,
      async stop() {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 3000);
          await exited;
          clearTimeout(t);
        }
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

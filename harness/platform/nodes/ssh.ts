// Node kind "ssh": an agent on a host reached by `ssh`, where the project is installed and built
// (`projectDir`). The ssh session's stdin is the agent's lifeline: when we stop, or die, the session
// closes and the agent stops with it. The agent listens on the host's `listen` address and is
// reached at `address` (default: `host`).
import { startProcess } from './process.js';
import type { AgentReady, NodeKind, NodeSpec } from './kind.js';
import { agentArgs } from './kind.js';

interface SshSpec extends NodeSpec {
  host: string;
  projectDir: string;
  user?: string;
  port?: number;
  /** private key file */
  identity?: string;
  /** known_hosts file; without one the host key must already be known to ssh */
  knownHosts?: string;
  /** where peers reach the agent (default host) */
  address?: string;
  /** the address the agent listens on, on the remote host (default 0.0.0.0) */
  listen?: string;
  /** node on the remote host (default "node") */
  nodePath?: string;
  /** more ssh -o options, e.g. ["ConnectTimeout=5"] */
  options?: string[];
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The ssh command line that runs the agent on the node. */
export function sshCommand(spec: SshSpec, remote: string[]): string[] {
  const args = ['-T', '-o', 'BatchMode=yes', '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=3'];
  if (spec.port !== undefined) args.push('-p', String(spec.port));
  if (spec.identity) args.push('-i', spec.identity, '-o', 'IdentitiesOnly=yes');
  if (spec.knownHosts) args.push('-o', `UserKnownHostsFile=${spec.knownHosts}`, '-o', 'StrictHostKeyChecking=yes');
  for (const o of spec.options ?? []) args.push('-o', o);
  args.push(spec.user ? `${spec.user}@${spec.host}` : spec.host, '--', remote.map(quote).join(' '));
  return args;
}

export const sshKind: NodeKind = {
  kind: 'ssh',
  fields: 'host, projectDir (required); user, port, identity, knownHosts, address, listen, nodePath, options',
  validate(spec) {
    const s = spec as Partial<SshSpec>;
    if (typeof s.host !== 'string' || !s.host) return 'an ssh node needs "host"';
    if (typeof s.projectDir !== 'string' || !s.projectDir.startsWith('/')) return 'an ssh node needs "projectDir", the absolute path of the built project on that host';
    if (s.port !== undefined && !(Number.isInteger(s.port) && s.port > 0 && s.port < 65536)) return `"port" ${String(s.port)} is not a TCP port`;
    if (s.options !== undefined && !(Array.isArray(s.options) && s.options.every((o) => typeof o === 'string'))) return '"options" is a list of ssh -o strings';
    for (const f of ['user', 'identity', 'knownHosts', 'address', 'listen', 'nodePath'] as const) if (s[f] !== undefined && typeof s[f] !== 'string') return `"${f}" is a string`;
    return null;
  },
  async launch(node, what) {
    const spec = node as SshSpec;
    const agent = `${spec.projectDir.replace(/\/$/, '')}/build/harness/platform/agent-main.js`;
    const remote = ['exec', spec.nodePath ?? 'node', agent, ...agentArgs(spec.name, { ...what, workDir: undefined, cgroup: undefined }, `tcp:${spec.listen ?? '0.0.0.0'}:0`)];
    if (what.cpus) remote.splice(1, 0, 'taskset', '-c', what.cpus);
    const p = await startProcess<AgentReady>({ cmd: 'ssh', args: sshCommand(spec, remote), label: `agent ${spec.name} (ssh ${spec.user ? `${spec.user}@` : ''}${spec.host})` });
    // the agent names the address it listens on; peers reach the host's
    const port = /:(\d+)$/.exec(p.ready.endpoint)?.[1];
    const host = spec.address ?? spec.host;
    const endpoint = `tcp:${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`;
    return { name: spec.name, kind: 'ssh', endpoint, ready: p.ready, child: p.child, stderrTail: p.stderrTail, exited: p.exited, stop: () => p.stop() };
  },
};

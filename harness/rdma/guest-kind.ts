// Node kind "guest": a node agent inside a throwaway QEMU guest of its own (guest.ts), reached over TCP
// at a port of this machine's loopback that QEMU forwards into the guest. The guest's CPU may be
// emulated (TCG), so its agent is slow; it is there to take the platform where this machine's kernel
// cannot go (SoftRoCE). Its run folder (console log, output) is a scratch folder removed when it stops.
import fs from 'node:fs';
import net from 'node:net';
import { agentMain } from '../paths.js';
import { scratchDir } from '../platform/scratch.js';
import { agentArgs, type AgentReady, type LaunchedNode, type NodeKind, type NodeSpec } from '../platform/nodes/kind.js';
import { GuestError, startGuest, type StartedGuest } from './guest.js';

const GUEST_PORT = 7070;

interface GuestSpec extends NodeSpec {
  /** guest memory (MiB, default 2048) and vCPUs (default 2) */
  memoryMiB?: number;
  cpus?: number;
  /** how long boot and the agent's start may take (default 300000 ms under emulation) */
  readyTimeoutMs?: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export const guestKind: NodeKind = {
  kind: 'guest',
  fields: 'memoryMiB, cpus, readyTimeoutMs (all optional)',
  validate(spec) {
    const s = spec as Partial<GuestSpec>;
    for (const f of ['memoryMiB', 'cpus', 'readyTimeoutMs'] as const) if (s[f] !== undefined && !(Number.isInteger(s[f]) && s[f]! > 0)) return `"${f}" is a positive integer`;
    return null;
  },
  async launch(node, what): Promise<LaunchedNode> {
    const spec = node as GuestSpec;
    const dir = scratchDir('guestnode');
    const hostPort = await freePort();
    const ac = new AbortController();
    const label = `agent ${spec.name} (guest)`;
    // the guest is the lifeline's other end: when it goes, the agent goes with it
    const args = agentArgs(spec.name, { ...what, workDir: undefined, cgroup: undefined }, `tcp:0.0.0.0:${GUEST_PORT}`).map((a) => (a === 'stdin' ? 'none' : a));
    let g: StartedGuest;
    try {
      g = await startGuest({ command: [process.execPath, agentMain, ...args], outDir: dir, timeoutMs: 24 * 3600_000, network: false, hostfwd: { hostPort, guestPort: GUEST_PORT }, signal: ac.signal, memoryMiB: spec.memoryMiB, cpus: spec.cpus });
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    const exited = g.done.then(
      (r) => `guest ended, the agent's exit code ${r.exitCode}`,
      (e: Error) => (e instanceof GuestError ? e.message : String(e)),
    );
    const tail = () => {
      try {
        return fs.readFileSync(g.outputPath, 'utf8').slice(-2000);
      } catch {
        return '';
      }
    };
    const stop = async () => {
      ac.abort();
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    };
    const deadline = Date.now() + (spec.readyTimeoutMs ?? 300_000);
    let ready: AgentReady | null = null;
    let gone: string | null = null;
    void exited.then((why) => (gone = why));
    while (!ready) {
      const line = /^READY (.*)$/m.exec(tail())?.[1];
      if (line) ready = JSON.parse(line) as AgentReady;
      else if (gone || Date.now() > deadline) {
        await stop();
        throw new Error(`${label} ${gone ? `ended before it was ready: ${gone}` : `was not ready within ${(spec.readyTimeoutMs ?? 300_000) / 1000} s`}${tail() ? `; its output: ${tail().slice(-600)}` : ''}`);
      } else await new Promise((r) => setTimeout(r, 250));
    }
    return { name: spec.name, kind: 'guest', endpoint: `tcp:127.0.0.1:${hostPort}`, ready, child: g.child, stderrTail: tail, exited, stop };
  },
};

// Starts the gateway as its own process (as in a deployment) and connects protocol clients to it.
import fs from 'node:fs';
import path from 'node:path';
import { gatewayMain } from '../paths.js';
import { ProtocolClient } from '../platform/client.js';
import { startProcess } from '../platform/nodes/process.js';
import { scratchDir } from '../platform/scratch.js';

export interface GatewayHandle {
  binary: string;
  http: string | null;
  pid: number;
  /** a new connection to the binary endpoint */
  connect(): Promise<ProtocolClient>;
  stop(): Promise<void>;
}

export interface GatewayLaunch {
  memoryLimitMiB: number;
  /** pin the gateway and its executors to these CPUs (taskset), e.g. "1" */
  cpus?: string;
  http?: boolean;
  /** the client -> gateway and gateway -> executor connections: unix sockets (default) or TCP on 127.0.0.1 */
  transport?: 'unix' | 'tcp';
  /** executors per variant (gateway --pool; default 1) */
  pool?: number;
}

export async function startGateway(opts: GatewayLaunch): Promise<GatewayHandle> {
  const dir = scratchDir('gateway');
  const binary = opts.transport === 'tcp' ? 'tcp:127.0.0.1:0' : `unix:${path.join(dir, 'gateway.sock')}`;
  const args = [gatewayMain, '--binary', binary, '--memory-mib', String(opts.memoryLimitMiB), '--executor-transport', opts.transport ?? 'unix'];
  if (opts.http) args.push('--http', '127.0.0.1:0');
  if (opts.pool && opts.pool > 1) args.push('--pool', String(opts.pool));
  const p = await startProcess<{ binary: string; http: string | null }>({ cmd: process.execPath, args, label: 'gateway', cpus: opts.cpus, stderr: 'inherit' }).catch((e: Error) => {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  });
  const { child, ready } = p;
  // however it ends, its socket folder goes with it
  void p.exited.then(() => fs.rmSync(dir, { recursive: true, force: true }));
  const clients: ProtocolClient[] = [];
  let stopped: Promise<void> | null = null;
  return {
    binary: ready.binary,
    http: ready.http,
    pid: child.pid!,
    async connect() {
      const c = await ProtocolClient.connect(ready.binary);
      clients.push(c);
      return c;
    },
    stop() {
      stopped ??= (async () => {
        for (const c of clients) c.close();
        // SIGTERM at once (it stops its executors), SIGKILL after 15 s
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
          await p.exited;
          clearTimeout(t);
        }
        fs.rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

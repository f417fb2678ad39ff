// Starts the gateway as its own process (as in a deployment) and connects protocol clients to it.
import fs from 'node:fs';
import { gatewayMain } from '../paths.js';
import { ProtocolClient } from '../platform/client.js';
import { startProcess } from '../platform/nodes/process.js';
import { scratchDir } from '../platform/scratch.js';
import { linkPlaces, type LinkPlaces } from './link-places.js';

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
  /** the client -> gateway and gateway -> executor links: unix (default), tcp or rdma (link-places.ts) */
  transport?: string;
  /** executors per variant (gateway --pool; default 1) */
  pool?: number;
}

export async function startGateway(opts: GatewayLaunch): Promise<GatewayHandle> {
  const dir = scratchDir('gateway');
  let places: LinkPlaces;
  try {
    places = linkPlaces(opts.transport ?? 'unix', dir);
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const args = [gatewayMain, '--binary', places.binary, '--memory-mib', String(opts.memoryLimitMiB), '--executor-transport', places.executors];
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

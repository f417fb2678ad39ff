// The two arms of the sockmap comparison, each a gateway with its executors in a cgroup of its own:
//
//   sockmap: cgroup fxh-<pid>-sockmap WITH fxh_sockops/fxh_skmsg attached; variant wasm+sockmap
//   tcp:     cgroup fxh-<pid>-tcp, identical, NO programs;                  variant wasm+tcp
//
// Both variants are the wasm runtime reached over TCP on 127.0.0.1 (VariantPlugin.executor).
// The gateway is started inside the cgroup (spawnInCgroup: it enters before exec), so the
// gateway's connection to its executor is established by two processes of the cgroup: sock_ops
// sees BOTH ends (ACTIVE_ESTABLISHED for the gateway's, PASSIVE_ESTABLISHED for the executor's;
// an accepted socket belongs to the cgroup of its listener, i.e. the executor's). The fast path
// therefore carries the gateway<->executor hop in both directions: one sk_msg run per write,
// request and response.
// The measuring client reaches the gateway over TCP too (in both arms), and creates that
// connection while it is briefly a member of the arm's cgroup (connect() below): a socket belongs
// for life to the cgroup of the process that created it, so the client<->gateway hop is carried as
// well, and the client goes back to its own cgroup at once. Per invocation that is 4 messages on
// the fast path: client->gateway, gateway->executor, executor->gateway, gateway->client.
// The sockmap arm's gateway also inherits the fxh_splice map (fd 3) and the SOCKHASH (fd 4) and splices clients that ask
// (connect({ splice })): then a call is 2 messages, client->executor and executor->client, both
// redirected by sk_msg, and the gateway process is not on the path.
import fs from 'node:fs';
import path from 'node:path';
import { nodeCommand, waitForReady } from '../platform/child-ready.js';
import type { ChildProcess } from 'node:child_process';
import { gatewayMain } from '../paths.js';
import { ProtocolClient } from '../platform/client.js';
import type { Capability } from '../platform/variant.js';
import { CGROUP2_ROOT, cgroup2Available, cgroupOf, cgroupProcs, platformCgroup, spawnInCgroup, type Cgroup } from './cgroup.js';
import { attachSockmap, sockmapCapability, type SockmapHandle } from './sockmap.js';
import { scratchDir } from '../platform/scratch.js';

export type ArmKind = 'sockmap' | 'tcp';
export const ARM_VARIANT: Record<ArmKind, string> = { sockmap: 'wasm+sockmap', tcp: 'wasm+tcp' };

/** Set in a platform gateway's environment (and so its executors'): the cgroup it was placed in. */
export const PLATFORM_CGROUP_ENV = 'FXH_PLATFORM_CGROUP';
/** Set to its own pid by the sockmap experiment's process: it places these variants itself
 *  (children inherit the variable but not the pid, so it does not vouch for them). */
export const PLACER_ENV = 'FXH_SOCKMAP_PLACER';

/** What the arm needs of this machine: root and eBPF for sockmap, root (a cgroup) for tcp. */
export function armCapability(kind: ArmKind): Capability {
  if (kind === 'sockmap') {
    const c = sockmapCapability();
    if (!c.ok) return c;
  }
  const cg = cgroup2Available();
  if (!cg.ok) return { ok: false, reason: `${ARM_VARIANT[kind]} needs a cgroup of its own: ${cg.reason}` };
  return { ok: true };
}

/**
 * check() of the two variants. They measure what their name says only inside their arm's cgroup:
 * a gateway elsewhere would reach them over plain TCP. So they are available (a) in a process of
 * that cgroup (the arm's gateway and executors) and (b) in the sockmap experiment, which places
 * them; any other experiment records them as skipped with this reason.
 */
export function placementCheck(kind: ArmKind): Capability {
  const cap = armCapability(kind);
  if (!cap.ok) return cap;
  const placed = process.env[PLATFORM_CGROUP_ENV];
  if (placed) {
    const mine = cgroupOf('self');
    if (mine !== `/${path.basename(placed)}`) return { ok: false, reason: `this process is in cgroup ${mine}, not in the platform's cgroup ${placed}` };
    if (!path.basename(placed).endsWith(`-${kind}`)) return { ok: false, reason: `${ARM_VARIANT[kind]} runs in a *-${kind} cgroup, this is ${placed}` };
    return { ok: true };
  }
  if (process.env[PLACER_ENV] === String(process.pid)) return { ok: true };
  return {
    ok: false,
    reason: `${ARM_VARIANT[kind]} runs only in the sockmap experiment (zx experiments/sockmap.mjs), which starts its gateway and executors inside a cgroup of their own${kind === 'sockmap' ? ' with the sock_ops/sk_msg programs attached' : ''}; through another gateway it would be plain TCP`,
  };
}

export interface Arm {
  kind: ArmKind;
  variant: string;
  cgroup: Cgroup;
  /** null for the tcp arm */
  sockmap: SockmapHandle | null;
  gatewayPid: number;
  /** the gateway's binary endpoint (tcp:127.0.0.1:port) */
  endpoint: string;
  /** a client connection created inside the arm's cgroup (so both its ends are the arm's); with
   *  `splice`, joined by the gateway to an executor in the kernel (sockmap arm only) */
  connect(opts?: { splice?: { timeoutMs: number } }): Promise<ProtocolClient>;
  stop(): Promise<void>;
}

export interface ArmOptions {
  memoryLimitMiB?: number;
  /** taskset CPU list for the gateway and its executors */
  cpus?: string;
}

/** Creates the arm's cgroup (+ programs for sockmap) and starts a gateway inside it. */
export async function startArm(kind: ArmKind, opts: ArmOptions = {}): Promise<Arm> {
  const cap = armCapability(kind);
  if (!cap.ok) throw new Error(cap.reason);
  const cgroup = platformCgroup(kind);
  let sockmap: SockmapHandle | null = null;
  let child: ChildProcess | null = null;
  const dir = scratchDir(`arm${kind}`);
  const clients: ProtocolClient[] = [];
  let stopped: Promise<void> | null = null;
  const stop = () =>
    (stopped ??= (async () => {
      for (const c of clients) c.close();
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child!.once('exit', () => r()));
        child.kill('SIGTERM');
        const t = setTimeout(() => child!.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      // executors leave when the gateway closes their stdin; wait for the cgroup to empty, then
      // kill what a function still holds (it cannot read its stdin) rather than let it escape
      // to the root cgroup when the cgroup is removed
      await emptied(cgroup.path, 5000);
      if (cgroupProcs(cgroup.path).length) {
        killCgroup(cgroup.path);
        await emptied(cgroup.path, 5000);
      }
      sockmap?.detach();
      cgroup.detach();
      fs.rmSync(dir, { recursive: true, force: true });
    })());
  try {
    if (kind === 'sockmap') sockmap = attachSockmap(cgroup);
    const args = [gatewayMain, '--binary', 'tcp:127.0.0.1:0', '--memory-mib', String(opts.memoryLimitMiB ?? 256)];
    if (sockmap) args.push('--splice-map-fd', '3', '--sockhash-fd', '4');
    const env: NodeJS.ProcessEnv = { ...process.env, [PLATFORM_CGROUP_ENV]: cgroup.path };
    delete env[PLACER_ENV];
    const { cmd, argv } = nodeCommand(args, opts.cpus);
    child = spawnInCgroup(cgroup.path, cmd, argv, { stdio: sockmap ? ['pipe', 'pipe', 'inherit', sockmap.spliceMapFd, sockmap.sockhashFd] : ['pipe', 'pipe', 'inherit'], env });
    const c = child;
    const ready = await waitForReady<{ binary: string }>(c, `${kind} gateway`);
    return {
      kind,
      variant: ARM_VARIANT[kind],
      cgroup,
      sockmap,
      gatewayPid: c.pid!,
      endpoint: ready.binary,
      async connect(o = {}) {
        const cl = await insideCgroup(cgroup.path, () => ProtocolClient.connect(ready.binary));
        clients.push(cl);
        if (o.splice) await cl.splice(ARM_VARIANT[kind], o.splice.timeoutMs);
        return cl;
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

async function emptied(dir: string, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (cgroupProcs(dir).length) {
    if (Date.now() >= until) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/** SIGKILL to every process of the cgroup (cgroup.kill where the kernel has it, 5.14+). */
function killCgroup(dir: string): void {
  try {
    fs.writeFileSync(path.join(dir, 'cgroup.kill'), '1');
    return;
  } catch {}
  for (const pid of cgroupProcs(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
}

/**
 * Runs `f` (which creates sockets) with this process in the cgroup `dir`, then moves it back to
 * the cgroup it was in. Sockets created meanwhile stay the cgroup's for life.
 */
export async function insideCgroup<T>(dir: string, f: () => Promise<T>): Promise<T> {
  const home = path.join(CGROUP2_ROOT, cgroupOf('self'));
  fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(process.pid));
  try {
    return await f();
  } finally {
    fs.writeFileSync(path.join(home, 'cgroup.procs'), String(process.pid));
  }
}

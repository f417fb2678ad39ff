// Inside the SoftRoCE guest: two rxe devices joined by a veth, in the guest's initial namespace.
//
// Why not one namespace per end: the guest's 6.1 kernel's rxe is not namespace-aware (its UDP
// socket and its route lookups live in init_net), so an rxe device on a veth moved into another
// namespace never sends (seen: perftest between fxa/fxb hung with 0 RoCE packets on the veth).
// Two devices in ONE namespace route to each other over lo (their addresses are local), so rxe
// drops what arrives there. Policy routing sends what the guest itself originates between the two
// addresses (`iif lo`) out of the veth instead, the local table moves behind those rules, and
// accept_local lets each end take packets from an address that is local too. rxe decides loopback
// by MAC, and the two veth ends differ, so every RoCE packet crosses the veth: XDP on both ends
// sees each one once.
import { spawnSync } from 'node:child_process';

export const NET = Object.freeze({ devA: 'rxe_a', devB: 'rxe_b', netdevA: 'fxr0', netdevB: 'fxr1', addrA: '10.77.0.1', addrB: '10.77.0.2' });

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** Builds the pair and its two rxe devices; returns what it did, for the run notes. */
export function setupRxePair(): string[] {
  const { netdevA: a, netdevB: b, addrA, addrB, devA, devB } = NET;
  const steps: [string, string[]][] = [
    ['ip', ['link', 'set', 'lo', 'up']],
    ['ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]],
    ['ip', ['addr', 'add', `${addrA}/24`, 'dev', a]],
    ['ip', ['addr', 'add', `${addrB}/24`, 'dev', b]],
    ['ip', ['link', 'set', a, 'up']],
    ['ip', ['link', 'set', b, 'up']],
    ...['all', a, b].map((d): [string, string[]] => ['sysctl', ['-qw', `net.ipv4.conf.${d}.accept_local=1`, `net.ipv4.conf.${d}.rp_filter=0`]]),
    ['ip', ['rule', 'add', 'pref', '10', 'from', addrA, 'to', addrB, 'iif', 'lo', 'lookup', '101']],
    ['ip', ['rule', 'add', 'pref', '11', 'from', addrB, 'to', addrA, 'iif', 'lo', 'lookup', '102']],
    ['ip', ['route', 'add', addrB, 'dev', a, 'src', addrA, 'table', '101']],
    ['ip', ['route', 'add', addrA, 'dev', b, 'src', addrB, 'table', '102']],
    ['ip', ['rule', 'add', 'pref', '100', 'lookup', 'local']],
    ['ip', ['rule', 'del', 'pref', '0']],
    ['rdma', ['link', 'add', devA, 'type', 'rxe', 'netdev', a]],
    ['rdma', ['link', 'add', devB, 'type', 'rxe', 'netdev', b]],
  ];
  for (const [c, args] of steps) sh(c, args);
  const links = sh('rdma', ['link']);
  for (const d of [devA, devB]) if (!new RegExp(`${d}/1 state ACTIVE`).test(links)) throw new Error(`${d} is not ACTIVE: ${links.trim()}`);
  return [`guest network: ${devA} on ${a} (${addrA}) and ${devB} on ${b} (${addrB}), a veth pair in the guest's initial namespace; policy routing (iif lo) sends traffic between the two local addresses over the veth`];
}

/** Removes the pair (the guest is thrown away anyway; this keeps a second setup in one boot possible). */
export function teardownRxePair(): void {
  spawnSync('rdma', ['link', 'del', NET.devA]);
  spawnSync('rdma', ['link', 'del', NET.devB]);
  spawnSync('ip', ['link', 'del', NET.netdevA]);
}

// Inside the SoftRoCE guest: the two rxe devices the guest's network set-up made
// (harness/rdma/guest-net.sh: rxe_a and rxe_b on the two ends of one veth, in the initial
// namespace, with policy routing so that traffic between the two local addresses crosses the
// veth), found from the environment it exports and `rdma link`. XDP on both veth ends then sees
// every RoCE packet once.
import { spawnSync } from 'node:child_process';

export interface RxePair {
  devA: string;
  devB: string;
  netdevA: string;
  netdevB: string;
  addrA: string;
  addrB: string;
}

/** The pair, or a clear error when the guest was started without its network. */
export function guestRxePair(env: NodeJS.ProcessEnv = process.env, rdmaLink?: string): RxePair {
  const devA = env.FXH_GUEST_DEV_A, devB = env.FXH_GUEST_DEV_B, addrA = env.FXH_GUEST_ADDR_A, addrB = env.FXH_GUEST_ADDR_B;
  if (!devA || !devB || !addrA || !addrB) throw new Error('no SoftRoCE pair: FXH_GUEST_DEV_A/B and FXH_GUEST_ADDR_A/B are not set (run inside the guest with its network, harness/rdma/guest.ts)');
  const links = rdmaLink ?? spawnSync('rdma', ['link'], { encoding: 'utf8' }).stdout ?? '';
  const netdev = (dev: string) => {
    const m = new RegExp(`^link ${dev}/\\d+ state (\\w+) .*netdev (\\S+)`, 'm').exec(links);
    if (!m) throw new Error(`rdma link shows no ${dev}: ${links.trim() || '(nothing)'}`);
    if (m[1] !== 'ACTIVE') throw new Error(`${dev} is ${m[1]}, not ACTIVE`);
    return m[2]!;
  };
  return { devA, devB, netdevA: netdev(devA), netdevB: netdev(devB), addrA, addrB };
}

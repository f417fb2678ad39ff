// The two RDMA ends a run uses: two network namespaces, each with its own address and RDMA device
// (inside the QEMU guest: fxa/fxb, set up by guest-net.sh, which exports them as FXH_GUEST_*).
import os from 'node:os';
export interface RdmaEnd {
  ns: string;
  /** CPUs its processes are pinned to (taskset): two busy-polling sides on one vCPU take turns a scheduler tick apart */
  cpus?: string;
  address: string;
  device: string;
  /** the GID index of the address on the device (perftest's -x) */
  gidIndex?: number;
}

export interface RdmaPair {
  a: RdmaEnd;
  b: RdmaEnd;
}

/** The guest's pair, from the environment guest-net.sh exports (its defaults otherwise); with 2+ CPUs each end gets its own. */
export function guestPair(env: NodeJS.ProcessEnv = process.env): RdmaPair {
  const two = os.availableParallelism() >= 2;
  const gid = env.FXH_GUEST_GID_INDEX ? { gidIndex: Number(env.FXH_GUEST_GID_INDEX) } : {};
  return {
    a: { ns: env.FXH_GUEST_NS_A ?? 'fxa', address: env.FXH_GUEST_ADDR_A ?? '10.77.0.1', device: env.FXH_GUEST_DEV_A ?? 'rxe_a', ...gid, ...(two ? { cpus: '0' } : {}) },
    b: { ns: env.FXH_GUEST_NS_B ?? 'fxb', address: env.FXH_GUEST_ADDR_B ?? '10.77.0.2', device: env.FXH_GUEST_DEV_B ?? 'rxe_b', ...gid, ...(two ? { cpus: '1' } : {}) },
  };
}

/** argv that runs `argv` inside the end's namespace, pinned to its CPUs when it names some */
export const inNs = (end: RdmaEnd, argv: string[]): string[] => [...(end.cpus ? ['taskset', '-c', end.cpus] : []), 'ip', 'netns', 'exec', end.ns, ...argv];

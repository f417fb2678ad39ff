// Where the gateway path's two links live for a transport: the gateway's binary endpoint and the
// endpoint its executors listen on. Over unix both are socket files; over tcp and rdma they are
// addresses of this machine: FXH_GATEWAY_ADDR and FXH_NODE_ADDR when set (the SoftRoCE guest sets
// them to the two ends of its veth, so that every hop crosses a netdev), else loopback for tcp.
// RDMA has no loopback of its own here: it needs the two addresses.

export interface LinkPlaces {
  /** the gateway listens here (port 0: any) */
  binary: string;
  /** gateway-main's --executor-transport */
  executors: string;
}

export function linkPlaces(transport: string, socketDir: string): LinkPlaces {
  if (transport === 'unix') return { binary: `unix:${socketDir}/gateway.sock`, executors: 'unix' };
  const gw = process.env.FXH_GATEWAY_ADDR;
  const node = process.env.FXH_NODE_ADDR;
  if (transport === 'tcp' && !gw && !node) return { binary: 'tcp:127.0.0.1:0', executors: 'tcp' };
  if (!gw || !node) throw new Error(`the ${transport} transport needs the addresses of two interfaces that carry it: set FXH_GATEWAY_ADDR and FXH_NODE_ADDR (the SoftRoCE guest sets them)`);
  return { binary: `${transport}:${gw}:0`, executors: `${transport}:${node}:0` };
}

/** the measurement path of the gateway over `transport`: plain "gateway" for the default unix sockets */
export const gatewayPath = (transport: string): string => (transport === 'unix' ? 'gateway' : `gateway-${transport}`);

/** `;substrate=…` inside the SoftRoCE guest (its CPU is emulated: every row says so), else '' */
export const substrateParam = (): string => (process.env.FXH_GUEST_SUBSTRATE ? `;substrate=${process.env.FXH_GUEST_SUBSTRATE}` : '');

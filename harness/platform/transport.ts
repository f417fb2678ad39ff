// Transports carry protocol frames between a client, the gateway and executors.
// Endpoints are strings "<scheme>:<address>"; later transports (sockmap, rdma) register a scheme here.
import net from 'node:net';
import fs from 'node:fs';

export interface Listener {
  /** the endpoint clients connect to (with the real port when 0 was asked) */
  endpoint: string;
  close(): Promise<void>;
}

/** `onread`: the socket reads into buffers the caller hands out, not into fresh ones (net.connect's option) */
export interface ConnectOptions {
  onread?: net.OnReadOpts;
}

export interface Transport {
  scheme: string;
  listen(address: string, onConnection: (socket: net.Socket) => void): Promise<Listener>;
  connect(address: string, opts?: ConnectOptions): Promise<net.Socket>;
}

function listenOn(server: net.Server, arg: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(arg, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function connectTo(opts: net.NetConnectOpts): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(opts);
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      s.setNoDelay(true);
      resolve(s);
    });
  });
}

const closeServer = (server: net.Server) => new Promise<void>((r) => server.close(() => r()));

export const unixTransport: Transport = {
  scheme: 'unix',
  async listen(path, onConnection) {
    // A socket file left by a crashed process would make listen fail with EADDRINUSE.
    if (fs.existsSync(path) && fs.statSync(path).isSocket()) fs.unlinkSync(path);
    const server = net.createServer(onConnection);
    await listenOn(server, { path });
    return {
      endpoint: `unix:${path}`,
      close: async () => {
        await closeServer(server);
        fs.rmSync(path, { force: true });
      },
    };
  },
  connect: (path, opts) => connectTo({ path, ...opts }),
};

function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad tcp address "${address}": want host:port`);
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port };
}

export const tcpTransport: Transport = {
  scheme: 'tcp',
  async listen(address, onConnection) {
    const { host, port } = splitHostPort(address);
    const server = net.createServer({ noDelay: true }, onConnection);
    await listenOn(server, { host, port });
    const real = server.address() as net.AddressInfo;
    return { endpoint: `tcp:${host}:${real.port}`, close: () => closeServer(server) };
  },
  connect(address, opts) {
    const { host, port } = splitHostPort(address);
    return connectTo({ host, port, noDelay: true, ...opts });
  },
};

const transports = new Map<string, Transport>([
  [unixTransport.scheme, unixTransport],
  [tcpTransport.scheme, tcpTransport],
]);

export function registerTransport(t: Transport): void {
  transports.set(t.scheme, t);
}

export function parseEndpoint(endpoint: string): { transport: Transport; address: string } {
  const i = endpoint.indexOf(':');
  const scheme = i < 0 ? '' : endpoint.slice(0, i);
  const transport = transports.get(scheme);
  if (!transport) throw new Error(`unknown transport in endpoint "${endpoint}"; valid schemes: ${[...transports.keys()].join(', ')}`);
  return { transport, address: endpoint.slice(i + 1) };
}

export const listen = (endpoint: string, onConnection: (s: net.Socket) => void) => {
  const { transport, address } = parseEndpoint(endpoint);
  return transport.listen(address, onConnection);
};

export const connect = (endpoint: string) => {
  const { transport, address } = parseEndpoint(endpoint);
  return transport.connect(address);
};

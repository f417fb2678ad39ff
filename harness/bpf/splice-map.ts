// The sockmap Splicer (harness/platform/splice.ts): writes the two entries of a joined pair into
// bpf/sockmap.bpf.c's fxh_splice map, whose fd the gateway inherited from the process that attached
// the programs (harness/bpf/arm.ts passes it as fd 3, and the SOCKHASH as fd 4). A join is refused
// when either peer socket is not in the SOCKHASH (created outside the platform's cgroup): the
// kernel could not deliver to it, and the client would believe in a fast path it does not have.
//
// Keys are the sender's (local ip, remote ip, local port, remote port), IPs in network order, ports
// in host order, as fxh_sockops writes them. The gateway holds the far ends of both connections,
// so the key of its peer is its own socket's view with the ends swapped.
import net from 'node:net';
import os from 'node:os';
import type { Splicer } from '../platform/splice.js';
import { L, check } from './libbpf/ffi.js';

const KEY_BYTES = 16;

/** The fxh_sock_key of the socket at the other end of `s` (its local end is our remote end). */
export function peerKey(s: net.Socket): Buffer {
  const local = s.localAddress;
  const remote = s.remoteAddress;
  if (!local || !remote || !net.isIPv4(local) || !net.isIPv4(remote) || s.localPort === undefined || s.remotePort === undefined) {
    throw new Error(`only connected IPv4 TCP sockets can be spliced (this one: ${remote ?? 'unconnected'})`);
  }
  const k = Buffer.alloc(KEY_BYTES);
  Buffer.from(remote.split('.').map(Number)).copy(k, 0);
  Buffer.from(local.split('.').map(Number)).copy(k, 4);
  k.writeUInt32LE(s.remotePort, 8);
  k.writeUInt32LE(s.localPort, 12);
  return k;
}

function keyText(k: Buffer): string {
  return `${[...k.subarray(0, 4)].join('.')}:${k.readUInt32LE(8)} -> ${[...k.subarray(4, 8)].join('.')}:${k.readUInt32LE(12)}`;
}

export function spliceMapSplicer(mapFd: number, sockhashFd: number): Splicer {
  const l = L();
  const cookie = Buffer.alloc(8);
  const inSockhash = (k: Buffer, who: string) => {
    const rc = l.bpf_map_lookup_elem(sockhashFd, k, cookie);
    if (rc === -os.constants.errno.ENOENT) throw new Error(`the ${who}'s socket (${keyText(k)}) is not in the platform's SOCKHASH: it was not created inside the platform's cgroup, so sk_msg cannot deliver to it`);
    check('splice: sockhash lookup', rc);
  };
  return {
    describe: `sockmap splice map (fd ${mapFd})`,
    join(client, executor) {
      const a = peerKey(client);
      const b = peerKey(executor);
      inSockhash(a, 'client');
      inSockhash(b, 'executor');
      check('splice: add client -> executor', l.bpf_map_update_elem(mapFd, a, b, 0n));
      const rc = l.bpf_map_update_elem(mapFd, b, a, 0n);
      if (rc < 0) {
        l.bpf_map_delete_elem(mapFd, a);
        check('splice: add executor -> client', rc);
      }
      let joined = true;
      return () => {
        if (!joined) return;
        joined = false;
        for (const k of [a, b]) {
          const r = l.bpf_map_delete_elem(mapFd, k);
          if (r < 0 && r !== -os.constants.errno.ENOENT) check('splice: remove', r);
        }
      };
    },
  };
}

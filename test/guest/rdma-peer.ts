// In the guest, namespace B: the passive side of the verbs tests (rdma-client.ts drives them).
//   node rdma-peer.js <ip> <port>          verbs on port, port+1, port+2 (basic, wrong rkey, outside);
//                                          the rdma link on port+3; stays until a link says "bye"
//   node rdma-peer.js victim <ip> <port>   accepts one connection and waits to be killed
//   node rdma-peer.js link-victim <ip> <port>   an rdma: link server with a 32 MiB region "big", to be killed
import { RegionTable, listenLinks, type Link } from '../../harness/platform/link.js';
import { responseFrame, type Frame } from '../../harness/platform/protocol.js';
import '../../harness/rdma/link.js';
import { WC, acceptOne, type Mr, type VerbsConn } from '../../harness/rdma/verbs.js';
import { pattern, regionBytes, verbsPdata } from './rdma-common.js';

const args = process.argv.slice(2);
const log = (s: string) => console.log(`peer: ${s}`);

/** a verbs connection with a registered 64 KiB buffer (read and write) and one posted receive */
async function accept(ip: string, port: number): Promise<{ conn: VerbsConn; mr: Mr; buf: Buffer }> {
  const buf = Buffer.alloc(64 * 1024);
  let mr: Mr | undefined;
  const conn = await acceptOne(ip, port, (_peer, c) => {
    mr = c.reg(buf, { read: true, write: true });
    c.postRecv(1n, mr, 60 * 1024, 1024);
    return verbsPdata(mr);
  }, { timeoutMs: 120_000 });
  return { conn, mr: mr!, buf };
}

/** busy-polls for one completion of `opcode` */
async function completion(conn: VerbsConn, opcode: number, what: string): Promise<number> {
  const end = Date.now() + 30_000;
  while (Date.now() < end) {
    for (const c of conn.poll()) {
      if (c.status !== 0) throw new Error(conn.describe(c, what));
      if (c.opcode === opcode) return c.byteLen;
    }
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`no ${what} completion within 30 s`);
}

async function verbs(ip: string, port: number): Promise<void> {
  // basic: SEND/RECV both ways, the client's WRITE lands here, its READ reads here
  const { conn, mr, buf } = await accept(ip, port);
  const n = await completion(conn, WC.recv, 'RECV');
  log(`received "${buf.toString('utf8', 60 * 1024, 60 * 1024 + n)}"`);
  buf.write('world', 61 * 1024);
  conn.postRecv(2n, mr, 60 * 1024, 1024);
  conn.post('send', 2n, mr, 61 * 1024, 5);
  await completion(conn, WC.send, 'SEND');
  await completion(conn, WC.recv, 'RECV'); // "check": the client's WRITE is done
  const expect = pattern(1000, 5);
  const landed = buf.subarray(100, 1100).equals(expect);
  buf.write(landed ? 'landed' : 'missing', 61 * 1024);
  conn.post('send', 3n, mr, 61 * 1024, landed ? 6 : 7);
  await completion(conn, WC.send, 'SEND');
  log(`the client's WRITE ${landed ? 'landed' : 'is missing'}`);
  // the client READs buf[2000, 3000) next; then closes
  await new Promise<void>((r) => conn.onPeerGone(() => r()));
  conn.close();
  // the error cases: the client's bad requests break these connections; this side only holds memory
  for (const p of [port + 1, port + 2]) {
    const e = await accept(ip, p);
    await new Promise<void>((r) => e.conn.onPeerGone(() => r()));
    e.conn.close();
  }
}

/** the rdma: link server: echoes, blocks, unregisters on request; serves links until one says "bye" */
async function link(ip: string, port: number, big = false): Promise<void> {
  const regions = new RegionTable();
  regions.register('pattern', regionBytes(1 << 20));
  const wide = regionBytes(200_000);
  regions.register('sub', wide.subarray(12_345, 112_345)); // a view inside a larger buffer
  if (big) regions.register('big', Buffer.alloc(32 << 20, 9));
  let bye!: () => void;
  const done = new Promise<void>((r) => (bye = r));
  const listener = await listenLinks(`rdma:${ip}:${port}`, (l: Link) => {
    l.onFrames((frames) => {
      for (const f of frames as Frame[]) {
        if (f instanceof Error || f.type !== 'invoke') continue;
        const answer = (payload: Uint8Array) => l.send(responseFrame({ id: f.id, status: 'ok', serverNs: 0, payload }));
        if (f.fn === 'echo') answer(f.payload);
        else if (f.fn === 'unregister') answer(Buffer.from(String(regions.unregister('pattern'))));
        else if (f.fn === 'bye') {
          answer(Buffer.from('bye'));
          bye();
        } else if (f.fn === 'block') {
          // this side's thread stops for 3 s: reads must still complete (the owner's CPU is not asked)
          answer(Buffer.from('blocking'));
          setImmediate(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3000));
        }
      }
    });
    l.onClose((why) => log(`link ${l.peer} ended: ${why ? why.message : 'closed'}`));
  }, { regions });
  log(`link listening on ${listener.endpoint}`);
  await done;
  await new Promise((r) => setTimeout(r, 500));
  void listener.close();
}

if (args[0] === 'victim') {
  const { conn } = await accept(args[1]!, Number(args[2]));
  log(`victim connected (QP 0x${conn.qpn.toString(16)}), waiting to be killed`);
  setInterval(() => {}, 1000);
} else if (args[0] === 'link-victim') {
  // an rdma: link server with a 32 MiB region, to be killed while it is read
  void link(args[1]!, Number(args[2]), true);
  setInterval(() => {}, 1000);
} else {
  const [ip, port] = [args[0]!, Number(args[1])];
  const l = link(ip, port + 3);
  await verbs(ip, port);
  await l;
  log('done');
  process.exit(0);
}

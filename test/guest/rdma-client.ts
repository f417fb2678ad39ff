// In the guest, namespace A: the active side of the verbs tests against rdma-peer.ts in namespace B.
// It records what it saw into <out>/rdma-client.json (the host test asserts on it) and never decides
// pass or fail itself: a step that throws is recorded with its error, and the next step runs.
//   node rdma-client.js <peer ip> <port> <out dir>
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { connectLink } from '../../harness/platform/link.js';
import { invokeFrame, type ResponseFrame } from '../../harness/platform/protocol.js';
import '../../harness/rdma/link.js';
import { connectVerbs, type Mr, type VerbsConn } from '../../harness/rdma/verbs.js';
import { parsePdata, pattern, regionBytes } from './rdma-common.js';

const [ip, portArg, out] = process.argv.slice(2);
if (!ip || !portArg || !out) throw new Error('usage: rdma-client <peer ip> <port> <out dir>');
const port = Number(portArg);
const results: Record<string, unknown> = {};
const log = (s: string) => console.log(`client: ${s}`);

async function step(name: string, f: () => Promise<Record<string, unknown>>): Promise<void> {
  const t0 = Date.now();
  try {
    results[name] = { ...(await f()), ms: Date.now() - t0 };
  } catch (e) {
    results[name] = { thrown: (e as Error).message, ms: Date.now() - t0 };
  }
  log(`${name}: ${JSON.stringify(results[name]).slice(0, 400)}`);
}

async function retrying<T>(f: () => Promise<T>, seconds = 90): Promise<T> {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    try {
      return await f();
    } catch (e) {
      if (Date.now() > end || !/ECONNREFUSED/.test(String(e))) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

async function connect(p: number): Promise<{ conn: VerbsConn; mr: Mr; buf: Buffer; peer: ReturnType<typeof parsePdata> }> {
  const buf = Buffer.alloc(64 * 1024);
  let mr: Mr | undefined;
  const conn = await retrying(() => connectVerbs(ip!, p, (c) => {
    mr = c.reg(buf, { read: true, write: true });
    c.postRecv(1n, mr, 60 * 1024, 1024);
    return Buffer.alloc(0);
  }, { timeoutMs: 20_000 }));
  return { conn, mr: mr!, buf, peer: parsePdata(conn.peerData) };
}

/** memory registrations and QPs of this process, as the kernel lists them (`rdma resource show`) */
function kernelResources(): { mrs: number; qps: number } {
  const count = (what: string) => {
    const r = spawnSync('rdma', ['resource', 'show', what], { encoding: 'utf8' });
    return r.stdout.split('\n').filter((l) => new RegExp(`\\bpid ${process.pid}\\b`).test(l)).length;
  };
  return { mrs: count('mr'), qps: count('qp') };
}

// the victim of "the remote is gone" starts now: a node process takes a while to start here
const peerScript = path.join(path.dirname(new URL(import.meta.url).pathname), 'rdma-peer.js');
const victim = spawn('ip', ['netns', 'exec', process.env.FXH_GUEST_NS_B ?? 'fxb', process.execPath, peerScript, 'victim', ip, String(port + 4)], { stdio: ['ignore', 'inherit', 'inherit'] });
const linkVictim = spawn('ip', ['netns', 'exec', process.env.FXH_GUEST_NS_B ?? 'fxb', process.execPath, peerScript, 'link-victim', ip, String(port + 5)], { stdio: ['ignore', 'inherit', 'inherit'] });

await step('basic', async () => {
  const { conn, mr, buf, peer } = await connect(port);
  const r: Record<string, unknown> = { qpn: conn.qpn, device: conn.device, peerLength: peer.length };
  buf.write('hello', 0);
  await conn.op('send', mr, 0, 5);
  // the peer's answer arrives in the receive posted before the connection
  const end = Date.now() + 30_000;
  let got = '';
  while (!got && Date.now() < end) {
    for (const c of conn.poll()) if (c.opcode === 128 && c.status === 0) got = buf.toString('utf8', 60 * 1024, 60 * 1024 + c.byteLen);
    await new Promise((res) => setImmediate(res));
  }
  r.peerSaid = got;
  // WRITE a pattern into the peer's buffer at 100, then tell it to look
  conn.postRecv(2n, mr, 60 * 1024, 1024);
  pattern(1000, 5).copy(buf, 1000);
  await conn.op('write', mr, 1000, 1000, peer.addr + 100n, peer.rkey);
  buf.write('check', 0);
  await conn.op('send', mr, 0, 5);
  got = '';
  while (!got && Date.now() < end) {
    for (const c of conn.poll()) if (c.opcode === 128 && c.status === 0) got = buf.toString('utf8', 60 * 1024, 60 * 1024 + c.byteLen);
    await new Promise((res) => setImmediate(res));
  }
  r.peerSawWrite = got;
  // READ the peer's bytes [100, 1100) back: what we wrote
  await conn.op('read', mr, 5000, 1000, peer.addr + 100n, peer.rkey);
  r.readBack = buf.subarray(5000, 6000).equals(pattern(1000, 5));
  r.before = kernelResources();
  conn.close();
  r.after = kernelResources();
  return r;
});

async function badAccess(p: number, how: 'rkey' | 'outside'): Promise<Record<string, unknown>> {
  const { conn, mr, peer } = await connect(p);
  const r: Record<string, unknown> = { qpn: conn.qpn, before: kernelResources() };
  try {
    if (how === 'rkey') await conn.op('write', mr, 0, 64, peer.addr, peer.rkey ^ 0x5a5a00);
    else await conn.op('read', mr, 0, 256, peer.addr + BigInt(peer.length) - 100n, peer.rkey);
    r.error = null;
  } catch (e) {
    r.error = (e as Error).message;
  }
  conn.close(); // the error's teardown
  r.after = kernelResources();
  return r;
}
await step('wrongRkey', () => badAccess(port + 1, 'rkey'));
await step('outside', () => badAccess(port + 2, 'outside'));

await step('remoteGone', async () => {
  const { conn, mr, peer } = await connect(port + 4);
  const r: Record<string, unknown> = { qpn: conn.qpn, victimPid: peer.pid };
  process.kill(peer.pid, 'SIGKILL');
  await new Promise((res) => setTimeout(res, 300));
  const t0 = Date.now();
  try {
    await conn.op('write', mr, 0, 64, peer.addr, peer.rkey, 20_000);
    r.error = null;
  } catch (e) {
    r.error = (e as Error).message;
  }
  r.failedAfterMs = Date.now() - t0;
  conn.close();
  r.after = kernelResources();
  return r;
});
victim.kill('SIGKILL');

type Pending = Map<number, { resolve: (f: ResponseFrame) => void; reject: (e: Error) => void }>;

function invoke(link: Awaited<ReturnType<typeof connectLink>>, pending: Pending, id: number, fn: string, payload: Uint8Array): Promise<ResponseFrame> {
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    link.send(invokeFrame({ id, mode: 'warm', variant: 'test', fn, timeoutMs: 10_000, payload }));
  });
}

await step('link', async () => {
  const link = await retrying(() => connectLink(`rdma:${ip}:${port + 3}`));
  const pending: Pending = new Map();
  link.onFrames((frames) => {
    for (const f of frames) if (!(f instanceof Error) && f.type === 'response') pending.get(f.id)?.resolve(f);
  });
  link.onClose((why) => {
    for (const p of pending.values()) p.reject(new Error(`the link ended before the answer: ${why ? why.message : 'closed'}`));
  });
  const r: Record<string, unknown> = { peer: link.peer };
  // frames of one chunk, of several chunks, and of many (a separate payload)
  const echoes: Record<string, boolean> = {};
  let id = 1;
  for (const size of [10, 70_000, 5 << 20]) {
    const p = pattern(size, size & 0xff);
    const got = await invoke(link, pending, id++, 'echo', p);
    echoes[size] = got.status === 'ok' && Buffer.from(got.payload).equals(p);
  }
  // several frames in flight at once come back whole and in order
  const many = await Promise.all(Array.from({ length: 50 }, (_, i) => invoke(link, pending, 100 + i, 'echo', pattern(3000 + i, i))));
  echoes.concurrent = many.every((f, i) => Buffer.from(f.payload).equals(pattern(3000 + i, i)));
  r.echoes = echoes;
  const whole = regionBytes(1 << 20);
  r.readWhole = Buffer.from(await link.readRegion('pattern', 0, 1 << 20)).equals(whole);
  r.readPartial = Buffer.from(await link.readRegion('pattern', 4093, 10_000)).equals(whole.subarray(4093, 14_093));
  r.readEmpty = (await link.readRegion('pattern', 1 << 20, 0)).length;
  r.readSub = Buffer.from(await link.readRegion('sub', 0, 100_000)).equals(regionBytes(200_000).subarray(12_345, 112_345));
  const reads = await Promise.all(Array.from({ length: 4 }, (_, i) => link.readRegion('pattern', i * 1000, 500_000)));
  r.concurrentReads = reads.every((b, i) => Buffer.from(b).equals(whole.subarray(i * 1000, i * 1000 + 500_000)));
  const refused = async (p: Promise<unknown>) => p.then(() => 'no error', (e: Error) => e.message);
  r.outOfRange = await refused(link.readRegion('pattern', (1 << 20) - 10, 11));
  r.unknown = await refused(link.readRegion('no-such-region', 0, 1));
  r.tooBig = await refused(link.readRegion('pattern', 0, 64 << 20));
  // the owner's thread stops for 3 s; a read during that time still completes
  await invoke(link, pending, 200, 'block', Buffer.alloc(0));
  const t0 = Date.now();
  r.blockedRead = Buffer.from(await link.readRegion('pattern', 0, 1 << 20)).equals(whole);
  r.blockedReadMs = Date.now() - t0;
  const t1 = Date.now();
  r.echoAfterBlock = Buffer.from((await invoke(link, pending, 201, 'echo', Buffer.from('x'))).payload).toString();
  r.echoAfterBlockMs = Date.now() - t1;
  // unregistering revokes: the next read is refused
  r.unregistered = Buffer.from((await invoke(link, pending, 202, 'unregister', Buffer.alloc(0))).payload).toString();
  await new Promise((res) => setTimeout(res, 200));
  r.afterUnregister = await refused(link.readRegion('pattern', 0, 10));
  const closed = new Promise<string>((res) => link.onClose((why) => res(why ? why.message : 'null')));
  link.close();
  r.closeWhy = await closed;
  r.readAfterClose = await refused(link.readRegion('sub', 0, 1));
  r.after = kernelResources();
  return r;
});

await step('readerGone', async () => {
  // a reader that disappears in the middle of its reads leaves the owner serving others
  const gone = await retrying(() => connectLink(`rdma:${ip}:${port + 3}`));
  const reads = Array.from({ length: 4 }, () => gone.readRegion('sub', 0, 100_000));
  await new Promise((res) => setImmediate(res));
  gone.close();
  const outcomes = await Promise.allSettled(reads);
  const r: Record<string, unknown> = { rejected: outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason?.message)) };
  const again = await connectLink(`rdma:${ip}:${port + 3}`);
  r.readAfter = Buffer.from(await again.readRegion('sub', 0, 100_000)).equals(regionBytes(200_000).subarray(12_345, 112_345));
  const pending: Pending = new Map();
  again.onFrames((frames) => {
    for (const f of frames) if (!(f instanceof Error) && f.type === 'response') pending.get(f.id)?.resolve(f);
  });
  r.bye = Buffer.from((await invoke(again, pending, 1, 'bye', Buffer.alloc(0))).payload).toString();
  again.close();
  return r;
});

await step('ownerGone', async () => {
  // the owner dies while 4 reads of 32 MiB are in flight: each names the read and the link
  const link = await retrying(() => connectLink(`rdma:${ip}:${port + 5}`), 120);
  await link.readRegion('big', 0, 16); // its address is known before the owner dies
  const reads = Array.from({ length: 4 }, () => link.readRegion('big', 0, 32 << 20));
  linkVictim.kill('SIGKILL');
  const outcomes = await Promise.allSettled(reads);
  const r: Record<string, unknown> = {
    rejected: outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason?.message)),
    fulfilled: outcomes.filter((o) => o.status === 'fulfilled').length,
  };
  r.after = kernelResources();
  return r;
});
linkVictim.kill('SIGKILL');

fs.writeFileSync(path.join(out, 'rdma-client.json'), JSON.stringify(results, null, 1));
log('done');
process.exit(0);

// One chain node: `node node-main.js --stage K --listen tcp:127.0.0.1:0 --next ENDPOINT|none --sink ENDPOINT --shm FILE --work-dir DIR`.
// Hosts the wasm variant (warm instance of `chainstep`), receives messages (wire.ts) for its stage,
// runs the function on the payload (inline for copy messages; read from the shared file for
// descriptor messages, and the result written back in place), writes its stamp slot (received,
// time inside the function, sent, seq) into the shared file and forwards: to the next node while
// stages remain, else to the client's sink. Anything that goes wrong with a request (the function
// fails, the next node is gone) goes to the sink as an error message that names this stage.
// Prints `READY {"endpoint":...}` once it listens and is connected downstream; leaves on SIGTERM/SIGINT
// (the client's stop()) or when its stdin closes: the client is gone without stopping it (killed), so
// the node also removes the client's files it was told of (--cleanup: the shared file, the scratch
// folder) — a crashed client leaves no /dev/shm file behind.
import fs from 'node:fs';
import type net from 'node:net';
import { parseArgs } from 'node:util';
import { loadCatalog } from '../functions/catalog.js';
import { getVariantPlugin } from '../platform/registry.js';
import { connect, listen } from '../platform/transport.js';
import { HEADER_BYTES, KIND_COPY, KIND_DESC, KIND_ERROR, MessageReader, SHM_BYTES, encodeHeader, nowNs, writeStamp, type Header } from './wire.js';

const { values } = parseArgs({
  options: {
    stage: { type: 'string' },
    listen: { type: 'string', default: 'tcp:127.0.0.1:0' },
    next: { type: 'string', default: 'none' },
    sink: { type: 'string' },
    shm: { type: 'string' },
    fn: { type: 'string', default: 'chainstep' },
    'work-dir': { type: 'string' },
    'memory-mib': { type: 'string', default: '256' },
    'timeout-ms': { type: 'string', default: '10000' },
    cleanup: { type: 'string', multiple: true, default: [] },
  },
});
if (!values.stage || !values.sink || !values.shm || !values['work-dir']) {
  console.error('usage: node-main --stage K --sink ENDPOINT --shm FILE --work-dir DIR [--next ENDPOINT|none] [--listen ENDPOINT]');
  process.exit(2);
}
const stage = Number(values.stage);
const timeoutMs = Number(values['timeout-ms']);
fs.mkdirSync(values['work-dir'], { recursive: true });
const variant = (await getVariantPlugin('wasm')).create({ workDir: values['work-dir'], memoryLimitMiB: Number(values['memory-mib']) });
const fn = (await loadCatalog()).get(values.fn!);
const shm = fs.openSync(values.shm, 'r+');
if (fs.fstatSync(shm).size < SHM_BYTES) throw new Error(`${values.shm} is smaller than ${SHM_BYTES} bytes`);
const next: net.Socket | null = values.next === 'none' ? null : await connect(values.next!);
const sink = await connect(values.sink);
// The next node gone (crashed, killed): this node stays, and every request that needs it fails
// with an error naming both stages. The sink gone: nothing more to report to; the client's stop()
// or its death (stdin) ends this node.
let nextLost: string | null = null;
next?.on('error', (e) => (nextLost ??= e.message));
next?.on('close', () => (nextLost ??= 'connection closed'));
sink.on('error', () => sink.destroy());

// One message at a time per node: a chain request visits each stage once, in order.
let queue: Promise<void> = Promise.resolve();
async function handle(h: Header, body: Buffer | null): Promise<void> {
  const tRecv = nowNs();
  if (h.stage !== stage) return sendError(h, `stage ${stage} got a message for stage ${h.stage}`);
  let input: Buffer;
  if (h.kind === KIND_COPY) input = body!;
  else {
    input = Buffer.allocUnsafe(h.bytes);
    fs.readSync(shm, input, 0, h.bytes, h.offset);
  }
  let out: Uint8Array;
  let computeNs: number;
  try {
    const r = await variant.invoke(fn, 'warm', input, { timeoutMs });
    out = r.output;
    computeNs = r.elapsedNs;
  } catch (e) {
    return sendError(h, `stage ${stage}: ${(e as Error).message}`);
  }
  const last = h.stage >= h.length;
  const to = last ? sink : next;
  if (!to) return sendError(h, `stage ${stage} is the last node but the chain has ${h.length} stages`);
  if (!last && (nextLost !== null || to.destroyed)) return sendError(h, `stage ${stage} cannot forward to stage ${stage + 1}: the node of stage ${stage + 1} is unreachable (${nextLost ?? 'connection destroyed'})`);
  const nh: Header = { ...h, stage: h.stage + 1, bytes: out.length };
  if (h.kind === KIND_DESC) {
    if (h.offset + out.length > SHM_BYTES) return sendError(h, `stage ${stage}: output of ${out.length} bytes does not fit the shared region`);
    fs.writeSync(shm, out, 0, out.length, h.offset);
    writeStamp(shm, stage, { recvNs: tRecv, computeNs, sendNs: nowNs(), seq: h.seq }, fs.writeSync);
    to.write(encodeHeader(nh));
  } else {
    const msg = Buffer.allocUnsafe(HEADER_BYTES + out.length);
    encodeHeader(nh).copy(msg, 0);
    msg.set(out, HEADER_BYTES);
    writeStamp(shm, stage, { recvNs: tRecv, computeNs, sendNs: nowNs(), seq: h.seq }, fs.writeSync);
    to.write(msg); // one write: one sk_msg run per hop (for payloads the kernel takes in one go)
  }
}
function sendError(h: Header, message: string): void {
  if (sink.destroyed) return;
  const m = Buffer.from(message, 'utf8');
  sink.write(Buffer.concat([encodeHeader({ ...h, kind: KIND_ERROR, bytes: m.length }), m]));
}

const upstream = new Set<net.Socket>();
const listener = await listen(values.listen!, (s: net.Socket) => {
  s.setNoDelay(true);
  upstream.add(s);
  s.on('close', () => upstream.delete(s));
  const reader = new MessageReader();
  s.on('data', (chunk: Buffer) => {
    let msgs;
    try {
      msgs = reader.push(chunk);
    } catch (e) {
      s.destroy(e as Error);
      return;
    }
    for (const m of msgs) queue = queue.then(() => handle(m.h, m.body)).catch((e: Error) => sendError(m.h, `stage ${stage}: ${e.message}`));
  });
  s.on('error', () => s.destroy());
});

let stopping = false;
async function stop(code: number, orphaned = false) {
  if (stopping) return;
  stopping = true;
  next?.destroy();
  sink.destroy();
  for (const s of upstream) s.destroy();
  await Promise.allSettled([listener.close(), variant.teardown()]);
  try {
    fs.closeSync(shm);
  } catch {}
  if (orphaned) {
    // every node of the chain does this; removal is idempotent
    for (const p of values.cleanup ?? []) {
      try {
        fs.rmSync(p, { recursive: true, force: true, maxRetries: 3 });
      } catch {}
    }
  }
  process.exit(code);
}
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));
process.stdin.on('end', () => void stop(0, true));
process.stdin.resume();
process.stdout.write(`READY ${JSON.stringify({ endpoint: listener.endpoint, stage, pid: process.pid })}\n`);

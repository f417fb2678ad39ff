// The transport interface at the level of frames and byte ranges, not sockets, so that a verbs
// (RDMA) transport can implement it: a Link sends and receives whole frames, and reads byte ranges
// of the peer's registered regions. Over TCP and unix sockets a region read is a request the
// owner's transport code answers from its RegionTable (no application callback per read); over RDMA
// it becomes a one-sided READ the owner's CPU does not see. Endpoints select the implementation by
// scheme ("tcp:", "unix:", "rdma:"); a new transport is a module in harness/transports/ (see below).
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FrameReader, ROUTE_HEAD_BYTES, guardedSink, writeFrame, type PayloadSink } from './frame-stream.js';
import { PushInbox, pushedReads } from './link-push.js';
import { MAX_FRAME_BYTES, ProtocolError, decodeFrame, type Frame, type FrameBytes } from './protocol.js';
import { FRAME_REGION_DATA, FRAME_REGION_PUSH, encodeRegionRead, pushFailedFrame, regionDataFrame, regionPushFrame } from './agent-frames.js';
import { parseEndpoint, type Listener } from './transport.js';
import { ReadFeed } from './read-feed.js';

export interface Link {
  /** the peer's endpoint (connect side) or "<scheme>:peer" (accepting side), for error messages */
  readonly peer: string;
  /** queues one frame; false when the transport asks the sender to slow down */
  send(frame: Buffer | FrameBytes): boolean;
  /** every batch of frames that arrives (region reads and their answers never get here) */
  onFrames(cb: (frames: (Frame | ProtocolError)[]) => void): void;
  /** once, when the link ends: null for an orderly close, else why */
  onClose(cb: (why: Error | null) => void): void;
  /** `length` bytes at `offset` of the peer's region `id` */
  readRegion(id: string, offset: number, length: number): Promise<Uint8Array>;
  /** the same read, its bytes handed to `sink` as they arrive, with no joined copy; sink.end() runs
   *  before the promise resolves. Optional: regionStream() falls back to readRegion. */
  readRegionStream?(id: string, offset: number, length: number, sink: PayloadSink): Promise<void>;
  close(): void;
  /** the stream socket under a socket link, for joining it to another in the kernel (sockmap); absent on other transports */
  readonly socket?: net.Socket;
  /**
   * Push, optional (a transport without it is read from instead): `pushRegion` sends `length` bytes
   * at `offset` of this side's region `id`, unasked, as piece `index` of `tag`; the peer takes the
   * pieces of a tag in order with `expectPush`. A piece that arrives before it is expected holds the
   * link (nothing behind it is read) for up to PUSH_HOLD_MS, then is dropped (link-push.ts).
   * `pushFailed` tells the peer the pieces of `tag` will not come; `dropPushes` gives up on them.
   */
  pushRegion?(tag: number, index: number, id: string, offset: number, length: number): boolean;
  pushFailed?(tag: number, message: string): void;
  expectPush?(tag: number, index: number, length: number, sink: PayloadSink): Promise<void>;
  dropPushes?(tag: number, why: string): void;
}

export { PUSH_HOLD_MS } from './link-push.js';

export interface LinkOptions {
  /** this side's regions, readable by the peer */
  regions?: RegionTable;
}

export interface LinkTransport {
  scheme: string;
  listen(address: string, onLink: (link: Link) => void, opts?: LinkOptions): Promise<Listener>;
  connect(address: string, opts?: LinkOptions): Promise<Link>;
}

/** Byte ranges a node exposes to one-sided reads, by id. The bytes are read in place, never copied. */
export class RegionTable {
  private readonly regions = new Map<string, Uint8Array>();
  private readonly unregisterCbs = new Set<(id: string) => void>();

  register(id: string, bytes: Uint8Array): void {
    if (Buffer.byteLength(id) > 255) throw new Error(`a region id must be at most 255 bytes: "${id.slice(0, 40)}…"`);
    if (this.regions.has(id)) throw new Error(`region "${id}" is already registered; unregister it first`);
    this.regions.set(id, bytes);
  }

  has(id: string): boolean {
    return this.regions.has(id);
  }

  unregister(id: string): boolean {
    const had = this.regions.delete(id);
    if (had) for (const cb of this.unregisterCbs) cb(id);
    return had;
  }

  /** the whole region, for a transport that exposes it in place (RDMA registers it for one-sided reads) */
  get(id: string): Uint8Array | undefined {
    return this.regions.get(id);
  }

  /** `cb` after each unregister (a transport revokes the peer's access); returns the way to stop */
  onUnregister(cb: (id: string) => void): () => void {
    this.unregisterCbs.add(cb);
    return () => this.unregisterCbs.delete(cb);
  }

  /** the bytes, or the reason they cannot be read */
  slice(id: string, offset: number, length: number): Uint8Array | string {
    const r = this.regions.get(id);
    if (!r) return `no region "${id}" is registered here (registered: ${[...this.regions.keys()].join(', ') || 'none'})`;
    if (length > MAX_REGION_READ) return `a read of ${length} bytes exceeds the ${MAX_REGION_READ}-byte limit of one read`;
    if (offset + length > r.length) return `read of [${offset}, ${offset + length}) is outside region "${id}" of ${r.length} bytes`;
    return r.subarray(offset, offset + length);
  }
}

/** the most one region read may ask for: its answer must fit in one frame */
export const MAX_REGION_READ = MAX_FRAME_BYTES - 16;

const NO_REGIONS = new RegionTable();
const NO_BYTES = new Uint8Array(0);

/** link.readRegionStream, or on a link without it, readRegion with its bytes handed to `sink` at once */
export function regionStream(link: Link, id: string, offset: number, length: number, sink: PayloadSink): Promise<void> {
  if (link.readRegionStream) return link.readRegionStream(id, offset, length, sink);
  return link.readRegion(id, offset, length).then((b) => {
    if (b.length) sink.data(b, 0);
    sink.end();
  });
}

/** A link's regions as a remote fork's child reads them (RemoteForker's RegionSource): streamed reads, where the link can */
export const regionSource = (link: Link) => ({ stream: (id: string, offset: number, length: number, sink: PayloadSink) => regionStream(link, id, offset, length, sink) });

/** A RegionSource whose first `pieces` reads are what the peer pushes as `tag`, the rest read (link-push.ts); close() drops what is still to come. */
export const pushedSource = (link: Link, tag: number, pieces: number, waitMs: number) => pushedReads(link, tag, pieces, waitMs, (id, offset, length, sink) => regionStream(link, id, offset, length, sink));

interface PendingRead {
  resolve: (b: Uint8Array) => void;
  reject: (e: Error) => void;
  what: string;
  length: number;
  /** a streamed read's sink: its answer is routed there as it arrives */
  sink?: PayloadSink;
  /** its answer's body is being routed to the sink */
  routed?: boolean;
}

/** A Link over a stream socket (TCP, unix): frames as protocol.ts writes them; `feed` when the socket was made with feed.onread. */
export function socketLink(socket: net.Socket, peer: string, opts: LinkOptions = {}, feed?: ReadFeed): Link {
  const regions = opts.regions ?? NO_REGIONS;
  const reads = new Map<number, PendingRead>();
  // pushed pieces: a held piece stops the reading until it is expected (link-push.ts); then, outside the
  // read callback that may be running, the held bytes are parsed and the socket is read again
  const pushes = new PushInbox(
    peer,
    () => socket.pause(),
    () =>
      setImmediate(() => {
        if (closed !== undefined) return;
        onChunk(null, false);
        if (!reader.held) socket.resume();
      }),
  );
  const streaming = () => {
    if (pushes.waiting) return true;
    for (const r of reads.values()) if (r.sink) return true;
    return false;
  };
  // a streamed read's answer (region-data, ok) goes to its sink piece by piece, and so does a pushed
  // piece (region-push) to the sink that expects it. A read stays pending until its body has ended, so
  // a link that ends in the middle of it fails it too.
  const reader = new FrameReader((head, bodyLength) => {
    const got = bodyLength - ROUTE_HEAD_BYTES;
    if (head[0] === FRAME_REGION_PUSH) return pushes.route(head, got);
    if (head[0] !== FRAME_REGION_DATA || head[5] !== 0) return null;
    const id = head.readUInt32LE(1);
    const r = reads.get(id);
    if (!r?.sink || r.routed) return null;
    r.routed = true;
    return guardedSink(r.sink, r.length, got, () => `${peer} answered ${r.what} with ${got} bytes`, (failed) => {
      if (reads.get(id) !== r) return; // the link ended first: the read failed then
      reads.delete(id);
      if (failed) r.reject(failed);
      else r.resolve(NO_BYTES);
    });
  });
  let nextRead = 1;
  let requestsCorked = false;
  let onFramesCb: ((frames: (Frame | ProtocolError)[]) => void) | null = null;
  const closeCbs: ((why: Error | null) => void)[] = [];
  let closed: Error | null | undefined;
  socket.setNoDelay?.(true);

  const end = (why: Error | null) => {
    if (closed !== undefined) return;
    closed = why;
    for (const r of reads.values()) r.reject(new Error(`the link to ${peer} ended during ${r.what}${why ? `: ${why.message}` : ''}`));
    reads.clear();
    pushes.end(why);
    for (const cb of closeCbs) cb(why);
  };
  socket.on('error', (e) => {
    end(e);
    socket.destroy();
  });
  socket.on('close', () => end(null));
  /** chunk: bytes that arrived; null: go on from a held piece that is now expected */
  const onChunk = (chunk: Buffer | null, reused: boolean) => {
    const app: (Frame | ProtocolError)[] = [];
    // Answers to one burst leave in as few writes as possible.
    socket.cork();
    try {
      if (chunk) reader.pushEach(chunk, onBody, reused);
      else reader.release(onBody);
    } catch (e) {
      socket.destroy(e as Error); // a corrupt length: the stream cannot be resynchronised
      return;
    }
    if (app.length && onFramesCb) onFramesCb(app);
    process.nextTick(() => socket.uncork());

    function onBody(body: Buffer): void {
      let f: Frame | ProtocolError;
      try {
        f = decodeFrame(body);
      } catch (e) {
        f = e as ProtocolError;
      }
      if (!(f instanceof Error) && f.type === 'region-read') {
        const got = regions.slice(f.region, f.offset, f.length);
        writeFrame(socket, typeof got === 'string' ? regionDataFrame(f.id, false, Buffer.from(got)) : regionDataFrame(f.id, true, got));
      } else if (!(f instanceof Error) && f.type === 'region-data') {
        const r = reads.get(f.id);
        if (!r) return;
        reads.delete(f.id);
        if (!f.ok) r.reject(new Error(`${peer} refused ${r.what}: ${Buffer.from(f.payload).toString('utf8')}`));
        else if (r.sink) r.reject(new Error(`internal: the answer to ${r.what} was not streamed`));
        else r.resolve(f.payload);
      } else if (!(f instanceof Error) && f.type === 'push-failed') {
        pushes.drop(f.id, `${peer} will not push tag ${f.id}: ${f.message}`);
      } else app.push(f);
    }
  };
  if (feed) {
    // While streamed reads are pending, a read stops where the current step ends (a frame's head, the
    // rest of a frame, a routed body's room), so that the next answer's bytes can be read into place.
    feed.attach(
      (bytes) => onChunk(bytes, true),
      (n) => reader.placed(n),
      () => {
        const room = reader.room();
        if (room) return { room };
        return { upTo: streaming() ? reader.wants() || 4 + ROUTE_HEAD_BYTES : Infinity };
      },
    );
  } else socket.on('data', (chunk: Buffer) => onChunk(chunk, false));

  const request = (id: string, offset: number, length: number, sink?: PayloadSink): Promise<Uint8Array> => {
    const what = `a read of [${offset}, ${offset + length}) of region "${id}"`;
    if (closed !== undefined) return Promise.reject(new Error(`the link to ${peer} is closed: cannot do ${what}`));
    if (length > MAX_REGION_READ) return Promise.reject(new Error(`${what}: at most ${MAX_REGION_READ} bytes per read; split it`));
    const rid = nextRead++;
    if (nextRead > 0xffffffff) nextRead = 1;
    return new Promise<Uint8Array>((resolve, reject) => {
      const frame = encodeRegionRead({ id: rid, region: id, offset, length }); // throws before anything is pending
      reads.set(rid, { resolve, reject, what, length, ...(sink ? { sink } : {}) });
      // the reads asked for in one tick (a pull asks for its header and pages at once) leave in one write
      if (!requestsCorked) {
        requestsCorked = true;
        socket.cork();
        process.nextTick(() => {
          requestsCorked = false;
          socket.uncork();
        });
      }
      writeFrame(socket, frame);
    });
  };

  return {
    peer,
    socket,
    send: (frame) => (socket.writable ? writeFrame(socket, frame) : false),
    onFrames(cb) {
      onFramesCb = cb;
    },
    onClose(cb) {
      if (closed !== undefined) cb(closed);
      else closeCbs.push(cb);
    },
    pushRegion(tag, index, id, offset, length) {
      const got = regions.slice(id, offset, length);
      if (typeof got === 'string') throw new Error(got);
      // not corked with the next piece: the header goes ahead of the pages, so the child decodes it while they come
      return writeFrame(socket, regionPushFrame(tag, index, got));
    },
    pushFailed(tag, message) {
      if (socket.writable) writeFrame(socket, pushFailedFrame(tag, message));
    },
    expectPush(tag, index, length, sink) {
      if (closed !== undefined) return Promise.reject(new Error(`the link to ${peer} is closed: cannot take pushed tag ${tag}`));
      return pushes.expect(tag, index, length, sink);
    },
    dropPushes: (tag, why) => pushes.drop(tag, why),
    readRegion: (id, offset, length) => request(id, offset, length),
    readRegionStream: (id, offset, length, sink) => request(id, offset, length, sink).then(() => undefined),
    close() {
      socket.end();
      socket.destroy();
    },
  };
}

/** The link transport over a stream transport of transport.ts (unix, tcp). */
export function streamLinkTransport(scheme: string): LinkTransport {
  const stream = () => parseEndpoint(`${scheme}:`).transport;
  return {
    scheme,
    listen: (address, onLink, opts) => stream().listen(address, (s) => onLink(socketLink(s, `${scheme}:${s.remoteAddress ?? 'peer'}:${s.remotePort ?? ''}`, opts))),
    connect: async (address, opts) => {
      const feed = new ReadFeed();
      return socketLink(await stream().connect(address, { onread: feed.onread }), `${scheme}:${address}`, opts, feed);
    },
  };
}

const linkTransports = new Map<string, LinkTransport>([
  ['unix', streamLinkTransport('unix')],
  ['tcp', streamLinkTransport('tcp')],
]);

export function registerLinkTransport(t: LinkTransport): void {
  linkTransports.set(t.scheme, t);
}

export function linkSchemes(): string[] {
  return [...linkTransports.keys()];
}

// Link transports beyond unix and tcp are plug-ins: every module in harness/transports/ whose default
// export is a LinkTransport, loaded the first time an endpoint names a scheme not yet registered.
const pluginDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'transports');
let plugins: Promise<void> | null = null;

function loadLinkPlugins(): Promise<void> {
  plugins ??= (async () => {
    const files = fs.existsSync(pluginDir) ? fs.readdirSync(pluginDir).filter((f) => f.endsWith('.js')).sort() : [];
    for (const f of files) {
      const t = ((await import(pathToFileURL(path.join(pluginDir, f)).href)) as { default?: Partial<LinkTransport> }).default;
      if (t && typeof t.scheme === 'string' && typeof t.listen === 'function' && typeof t.connect === 'function' && !linkTransports.has(t.scheme)) registerLinkTransport(t as LinkTransport);
    }
  })();
  return plugins;
}

async function pick(endpoint: string): Promise<{ t: LinkTransport; address: string }> {
  const i = endpoint.indexOf(':');
  const scheme = i < 0 ? '' : endpoint.slice(0, i);
  if (!linkTransports.has(scheme)) await loadLinkPlugins();
  const t = linkTransports.get(scheme);
  if (!t) throw new Error(`unknown transport in endpoint "${endpoint}"; valid schemes: ${linkSchemes().join(', ')}`);
  return { t, address: endpoint.slice(i + 1) };
}

export async function listenLinks(endpoint: string, onLink: (l: Link) => void, opts?: LinkOptions): Promise<Listener> {
  const { t, address } = await pick(endpoint);
  return t.listen(address, onLink, opts);
}

export async function connectLink(endpoint: string, opts?: LinkOptions): Promise<Link> {
  const { t, address } = await pick(endpoint);
  return t.connect(address, opts);
}

// A client of a node agent over a Link (any scheme): hello (version check, capabilities),
// put-module, invoke, restart, ping, and reads of the agent's regions.
import { encodePing, invokeFrame, type FrameBytes, type ResponseFrame } from './protocol.js';
import { PROTOCOL_VERSION, encodeHello, encodeRestart, forkFromFrame, pushToFrame, putModuleFrame, snapshotRegisterFrame, splitJsonAndBytes, type HelloFrame, type ModuleKind } from './agent-frames.js';
import type { ForkResult, RemoteCopy, SnapshotDescriptor } from './remote-fork.js';
import { connectLink, type Link, type LinkOptions } from './link.js';
import { sha256Hex, HASH_PREFIX } from './module-store.js';
import type { AgentInfo } from './agent.js';
import type { InvokeCall, InvokeReply } from './client.js';

type Answer = ({ type: 'response' } & ResponseFrame) | ({ type: 'hello' } & HelloFrame);

export class AgentClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: Answer) => void; reject: (e: Error) => void }>();
  private closed: Error | null = null;

  private constructor(readonly link: Link) {
    link.onFrames((frames) => {
      for (const f of frames) {
        if (f instanceof Error || (f.type !== 'response' && f.type !== 'hello')) continue;
        const p = this.pending.get(f.id);
        if (!p) continue;
        this.pending.delete(f.id);
        p.resolve(f.type === 'response' ? { ...f, payload: Uint8Array.prototype.slice.call(f.payload) } : f);
      }
    });
    link.onClose((why) => {
      this.closed ??= new Error(`the link to agent ${link.peer} closed${why ? `: ${why.message}` : ''}`);
      for (const p of this.pending.values()) p.reject(this.closed);
      this.pending.clear();
    });
  }

  static async connect(endpoint: string, opts?: LinkOptions): Promise<AgentClient> {
    return new AgentClient(await connectLink(endpoint, opts));
  }

  private request(frame: (id: number) => Buffer | FrameBytes): Promise<Answer> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextId++;
    if (this.nextId > 0xffffffff) this.nextId = 1;
    return new Promise<Answer>((resolve, reject) => {
      const bytes = frame(id);
      this.pending.set(id, { resolve, reject });
      this.link.send(bytes);
    });
  }

  private async ok(frame: (id: number) => Buffer | FrameBytes, what: string): Promise<Uint8Array> {
    const r = await this.request(frame);
    if (r.type === 'hello') throw new Error(`${what}: agent ${this.link.peer} answered with a hello`);
    if (r.status !== 'ok') throw new Error(`${what}: agent ${this.link.peer} refused (${r.status}): ${Buffer.from(r.payload).toString('utf8')}`);
    return r.payload;
  }

  /** The agent's capabilities; rejects when it speaks another protocol version, naming both. */
  async hello(version: number = PROTOCOL_VERSION): Promise<AgentInfo> {
    const r = await this.request((id) => encodeHello({ id, version, info: { role: 'client', pid: process.pid } }));
    if (r.type !== 'hello') throw new Error(`hello to agent ${this.link.peer} refused (${r.status}): ${Buffer.from(r.payload).toString('utf8')}`);
    if (r.version !== version) throw new Error(`protocol version mismatch: agent ${this.link.peer} speaks version ${r.version}, this client speaks version ${version}`);
    return r.info as unknown as AgentInfo;
  }

  /** Ships a module; resolves with the name to invoke it by ("sha256:<hex>"). */
  async putModule(kind: ModuleKind, bytes: Uint8Array, sha256: string = sha256Hex(bytes)): Promise<string> {
    const name = Buffer.from(await this.ok((id) => putModuleFrame({ id, kind, sha256, bytes }), `put-module ${HASH_PREFIX}${sha256}`)).toString('utf8');
    return name;
  }

  async invoke(call: InvokeCall): Promise<InvokeReply> {
    const r = await this.request((id) => invokeFrame({ id, ...call, payload: call.input }));
    if (r.type === 'hello') throw new Error(`invoke: agent ${this.link.peer} answered with a hello`);
    return { status: r.status, output: r.payload, serverNs: r.serverNs };
  }

  /** Drops every instance of `variant` ("" = all) and starts it afresh; resolves when done. */
  async restart(variant = ''): Promise<void> {
    await this.ok((id) => encodeRestart(id, variant), `restart ${variant || 'every variant'}`);
  }

  /** Parent side: a warm instance of `fn` that served `calls` calls of `input`, snapshotted into the agent's regions. */
  async snapshotRegister(variant: string, fn: string, input: Uint8Array, calls: number): Promise<SnapshotDescriptor> {
    const p = await this.ok((id) => snapshotRegisterFrame({ id, json: { variant, fn, calls }, bytes: input }), `snapshot-register ${variant}/${fn}`);
    return JSON.parse(Buffer.from(p).toString('utf8')) as SnapshotDescriptor;
  }

  /** Child side: fork from the agent at `peer` (the snapshot's owner) and answer `input` once; with `push`, take the pages the peer pushes as that tag (pushTo). */
  async forkFrom(peer: string, snapshot: SnapshotDescriptor, copy: RemoteCopy, input: Uint8Array, push?: { tag: number }): Promise<ForkResult> {
    const p = await this.ok((id) => forkFromFrame({ id, json: { variant: snapshot.variant, fn: snapshot.fn, peer, snapshot, copy, ...(push ? { push } : {}) }, bytes: input }), `fork-from ${peer} (${copy}${push ? ', pushed' : ''})`);
    const { json, bytes } = splitJsonAndBytes(p, 'fork-from answer');
    return { ...(json as unknown as Omit<ForkResult, 'output'>), output: bytes };
  }

  /** Parent side: push what child node `child` reads when it forks from `snapshot` (it must have a link open to this agent: its first fork from here opens one), as `tag`. */
  async pushTo(child: string, snapshot: SnapshotDescriptor, copy: RemoteCopy, tag: number): Promise<{ pieces: number; bytes: number }> {
    const p = await this.ok((id) => pushToFrame({ id, json: { variant: snapshot.variant, fn: snapshot.fn, child, snapshot, copy, tag }, bytes: new Uint8Array(0) }), `push-to ${child} (${copy})`);
    return JSON.parse(Buffer.from(p).toString('utf8')) as { pieces: number; bytes: number };
  }

  async ping(): Promise<void> {
    await this.ok((id) => encodePing(id), 'ping');
  }

  readRegion(id: string, offset: number, length: number): Promise<Uint8Array> {
    return this.link.readRegion(id, offset, length);
  }

  close(): void {
    this.link.close();
  }
}

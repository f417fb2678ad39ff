// The node agent's part in remote forks (remote-fork.ts). snapshot-register (parent): a variant
// publishes a warm instance's snapshot as regions. fork-from (child): fork from a peer agent's regions
// over a link of its own to that peer, reading them, or taking the pieces the peer pushes (push {tag}).
// push-to (parent): push those pieces to a child, on the link the child opened to this agent (it says
// who it is in a hello on that link), so the pages travel beside the request instead of after a round
// trip for it.
import type { FunctionEntry } from '../functions/types.js';
import { encodeResponse, errorResponse } from './protocol.js';
import { PROTOCOL_VERSION, encodeHello, jsonAndBytes, type JsonFrame } from './agent-frames.js';
import { REMOTE_COPY_MODES, type RemoteCopy, type RemoteForker, type SnapshotDescriptor } from './remote-fork.js';
import { connectLink, pushedSource, regionSource, type Link, type RegionTable } from './link.js';
import { InvokeError } from './variant.js';

/** how long a child waits for each pushed piece, and a parent for the child's link to push on */
export const PUSH_WAIT_MS = 5000;

export interface ForkHost {
  node: string;
  regions: RegionTable;
  /** the variant named in a fork frame, as a RemoteForker, and the function it names */
  forker(json: Record<string, unknown>): { fn: FunctionEntry; forker: RemoteForker };
}

export class AgentForks {
  /** links to peer agents this one forks from, by endpoint (kept for the next fork) */
  private readonly peers = new Map<string, Promise<Link>>();
  /** links child agents opened to this one, by the child's node name, and who waits for one */
  private readonly children = new Map<string, Link>();
  private readonly awaited = new Map<string, { done: (l: Link) => void; fail: (e: Error) => void }[]>();

  constructor(private readonly host: ForkHost) {}

  /** a hello on `link` from child agent `node` (sent when it opens a link to fork from here) */
  introduced(node: string, link: Link): void {
    this.children.set(node, link);
    link.onClose(() => {
      if (this.children.get(node) === link) this.children.delete(node);
    });
    for (const w of this.awaited.get(node) ?? []) w.done(link);
    this.awaited.delete(node);
  }

  async snapshotRegister(f: JsonFrame): Promise<Buffer> {
    try {
      const { fn, forker } = this.host.forker(f.json);
      const calls = Number(f.json.calls);
      if (!(Number.isInteger(calls) && calls >= 0)) throw new Error(`snapshot-register: calls must be an integer >= 0, not ${JSON.stringify(f.json.calls)}`);
      const d = await forker.snapshotRegister(fn, f.bytes, calls, this.host.regions);
      return encodeResponse({ id: f.id, status: 'ok', serverNs: d.snapshotNs, payload: Buffer.from(JSON.stringify(d)) });
    } catch (e) {
      return errorResponse(f.id, e instanceof InvokeError ? e.kind : 'bad-request', (e as Error).message);
    }
  }

  async forkFrom(f: JsonFrame): Promise<Buffer> {
    let fn: FunctionEntry;
    let forker: RemoteForker;
    const copy = String(f.json.copy) as RemoteCopy;
    const peer = String(f.json.peer);
    const snapshot = f.json.snapshot as SnapshotDescriptor | undefined;
    const push = f.json.push as { tag?: unknown } | undefined;
    try {
      ({ fn, forker } = this.host.forker(f.json));
      if (!REMOTE_COPY_MODES.includes(copy)) throw new Error(`fork-from: copy is one of ${REMOTE_COPY_MODES.join(', ')}, not "${copy}"`);
      if (!snapshot || typeof snapshot.region !== 'string') throw new Error('fork-from: no snapshot descriptor (the answer of snapshot-register)');
      if (push && !(Number.isInteger(push.tag) && (push.tag as number) >= 0 && (push.tag as number) <= 0xffffffff)) throw new Error(`fork-from: push.tag must be a u32, not ${JSON.stringify(push.tag)}`);
      if (push && !forker.pushPlan) throw new Error(`fork-from: variant ${String(f.json.variant)} cannot take pushed pages`);
    } catch (e) {
      return errorResponse(f.id, 'bad-request', (e as Error).message);
    }
    let pushed: ReturnType<typeof pushedSource> | null = null;
    try {
      const link = await this.peerLink(peer);
      if (push) pushed = pushedSource(link, push.tag as number, forker.pushPlan!(snapshot, copy).length, PUSH_WAIT_MS);
      const r = await forker.forkFrom(fn, { peer, snapshot, copy, input: f.bytes }, pushed ?? regionSource(link));
      const { output, ...numbers } = r;
      return encodeResponse({ id: f.id, status: 'ok', serverNs: r.firstResponseNs, payload: jsonAndBytes(numbers, output) });
    } catch (e) {
      const kind = e instanceof InvokeError ? e.kind : 'unavailable';
      return errorResponse(f.id, kind, `fork of ${fn.name} from ${peer} (region ${snapshot.region}, copy ${copy}${push ? `, pushed as tag ${String(push.tag)}` : ''}) failed: ${(e as Error).message}`);
    } finally {
      // pieces still on their way are read and dropped, never left holding the link
      pushed?.close();
    }
  }

  async pushTo(f: JsonFrame): Promise<Buffer> {
    const tag = Number(f.json.tag);
    const child = String(f.json.child);
    const copy = String(f.json.copy) as RemoteCopy;
    const snapshot = f.json.snapshot as SnapshotDescriptor | undefined;
    let to: Link | undefined;
    try {
      const { forker } = this.host.forker(f.json);
      if (!(Number.isInteger(tag) && tag >= 0 && tag <= 0xffffffff)) throw new Error(`push-to: tag must be a u32, not ${JSON.stringify(f.json.tag)}`);
      if (!REMOTE_COPY_MODES.includes(copy)) throw new Error(`push-to: copy is one of ${REMOTE_COPY_MODES.join(', ')}, not "${copy}"`);
      if (!snapshot || typeof snapshot.region !== 'string') throw new Error('push-to: no snapshot descriptor (the answer of snapshot-register)');
      if (!forker.pushPlan) throw new Error(`push-to: variant ${String(f.json.variant)} cannot push pages`);
      const plan = forker.pushPlan(snapshot, copy);
      to = await this.childLink(child);
      if (!to.pushRegion) throw new Error(`push-to: the link from child ${child} (${to.peer}) cannot carry pushes`);
      let bytes = 0;
      plan.forEach((p, i) => {
        to!.pushRegion!(tag, i, p.region, p.offset, p.length);
        bytes += p.length;
      });
      return encodeResponse({ id: f.id, status: 'ok', serverNs: 0, payload: Buffer.from(JSON.stringify({ pieces: plan.length, bytes })) });
    } catch (e) {
      const why = `push of ${snapshot?.region ?? '?'} (copy ${copy}) to child ${child} as tag ${tag} failed: ${(e as Error).message}`;
      to?.pushFailed?.(tag, why);
      return errorResponse(f.id, e instanceof InvokeError ? e.kind : 'bad-request', why);
    }
  }

  /** the link child `node` opened to this agent, waited for up to PUSH_WAIT_MS (its first fork opens it) */
  private childLink(node: string): Promise<Link> {
    const l = this.children.get(node);
    if (l) return Promise.resolve(l);
    return new Promise<Link>((resolve, reject) => {
      const w = {
        done: (link: Link) => {
          clearTimeout(timer);
          resolve(link);
        },
        fail: (e: Error) => {
          clearTimeout(timer);
          const rest = (this.awaited.get(node) ?? []).filter((x) => x !== w);
          if (rest.length) this.awaited.set(node, rest);
          else this.awaited.delete(node);
          reject(e);
        },
      };
      const timer = setTimeout(() => w.fail(new Error(`no child agent "${node}" opened a link to ${this.host.node} within ${PUSH_WAIT_MS} ms (connected children: ${[...this.children.keys()].join(', ') || 'none'})`)), PUSH_WAIT_MS);
      this.awaited.set(node, [...(this.awaited.get(node) ?? []), w]);
    });
  }

  /** this agent's link to the peer at `endpoint`; a new one says who opened it (a hello), so the peer can push on it */
  private peerLink(endpoint: string): Promise<Link> {
    let p = this.peers.get(endpoint);
    if (!p) {
      const made = connectLink(endpoint, { regions: this.host.regions }).then((l) => {
        l.send(encodeHello({ id: 0, version: PROTOCOL_VERSION, info: { role: 'peer', node: this.host.node, pid: process.pid } }));
        return l;
      });
      p = made;
      this.peers.set(endpoint, made);
      const forget = () => {
        if (this.peers.get(endpoint) === made) this.peers.delete(endpoint);
      };
      made.then((l) => l.onClose(forget), forget);
    }
    return p;
  }

  close(): void {
    for (const p of this.peers.values()) void p.then((l) => l.close(), () => {});
    this.peers.clear();
    this.children.clear();
    for (const ws of [...this.awaited.values()]) for (const w of ws) w.fail(new Error(`agent ${this.host.node} is stopping`));
  }
}

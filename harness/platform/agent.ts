// A node agent: serves invocations of one or more variants over any Link, says who it is (hello:
// protocol version and capabilities), takes modules by content hash (put-module), starts its
// variants afresh on request (restart), and exposes registered regions to one-sided reads (served
// by the link itself, see link.ts); every shipped module is such a region, named as it is invoked. The gateway's executors are agents of one variant.
// Remote fork (remote-fork.ts): snapshot-register, fork-from and push-to, handled in agent-fork.ts.
import os from 'node:os';
import type { FunctionEntry } from '../functions/types.js';
import { encodeResponse, errorResponse, responseFrame, type FrameBytes, type InvokeFrame } from './protocol.js';
import { PROTOCOL_VERSION, encodeHello, type PutModuleFrame } from './agent-frames.js';
import { isRemoteForker, type RemoteForker } from './remote-fork.js';
import { AgentForks } from './agent-fork.js';
import { HASH_PREFIX, type ModuleStore } from './module-store.js';
import { linkSchemes, type Link, type RegionTable } from './link.js';
import { InvokeError, type Capability, type Mode, type Variant } from './variant.js';

export interface FunctionLookup {
  get(name: string): FunctionEntry;
}

/** What an agent says about itself in its hello. */
export interface AgentInfo {
  version: number;
  node: string;
  pid: number;
  hostname: string;
  variants: { name: string; modes: readonly Mode[]; capability: Capability; enforcesTimeouts: boolean }[];
  /** link schemes it can be reached over and read regions with */
  transports: string[];
  /** lastForkRssBytes: this process's RSS read just after its last fork-from answer left (off the fork's clock: reading it costs 0.07-0.3 ms here) */
  memory: { totalBytes: number; freeBytes: number; perInstanceMiB: number; lastForkRssBytes?: number };
  cpus: number;
}

export interface AgentOptions {
  node: string;
  /** the variants it serves, made by `create` (again on restart) */
  variantNames: readonly string[];
  create(name: string): Variant;
  memoryLimitMiB: number;
  catalog: FunctionLookup;
  store: ModuleStore;
  regions: RegionTable;
}

const PONG = new Uint8Array(0);

export class Agent {
  private readonly variants = new Map<string, { variant: Variant; capability: Capability }>();
  private readonly forks: AgentForks;
  /** RSS just after the last fork-from answer was sent (see AgentInfo.memory) */
  private lastForkRss: number | undefined;

  private constructor(private readonly opts: AgentOptions) {
    this.forks = new AgentForks({ node: opts.node, regions: opts.regions, forker: (json) => this.forker(json) });
  }

  static async start(opts: AgentOptions): Promise<Agent> {
    if (!opts.variantNames.length) throw new Error('an agent serves at least one variant');
    const a = new Agent(opts);
    for (const name of opts.variantNames) await a.startVariant(name);
    return a;
  }

  private async startVariant(name: string): Promise<void> {
    const variant = this.opts.create(name);
    this.variants.set(name, { variant, capability: await variant.check() });
  }

  /** the live instance of variant `name` (the density experiment's idle control asks it to hold instances) */
  variant(name: string): Variant | undefined {
    return this.variants.get(name)?.variant;
  }

  get regions(): RegionTable {
    return this.opts.regions;
  }

  info(): AgentInfo {
    return {
      version: PROTOCOL_VERSION,
      node: this.opts.node,
      pid: process.pid,
      hostname: os.hostname(),
      variants: [...this.variants.values()].map(({ variant, capability }) => ({ name: variant.name, modes: variant.modes, capability, enforcesTimeouts: variant.enforcesTimeouts ?? false })),
      transports: linkSchemes(),
      memory: { totalBytes: os.totalmem(), freeBytes: os.freemem(), perInstanceMiB: this.opts.memoryLimitMiB, ...(this.lastForkRss !== undefined ? { lastForkRssBytes: this.lastForkRss } : {}) },
      cpus: os.availableParallelism(),
    };
  }

  serve(link: Link): void {
    // a peer gone in the middle of region reads (a child dying mid-transfer) costs only its link
    link.onClose((why) => {
      if (why) process.stderr.write(`agent ${this.opts.node}: link ${link.peer} ended: ${why.message}\n`);
    });
    link.onFrames((frames) => {
      for (const frame of frames) {
        if (frame instanceof Error) {
          link.send(errorResponse(0, 'bad-request', frame.message));
          continue;
        }
        switch (frame.type) {
          case 'ping': // a liveness probe: answering proves no function holds the event loop
            link.send(encodeResponse({ id: frame.id, status: 'ok', serverNs: 0, payload: PONG }));
            break;
          case 'invoke':
            void this.invoke(frame).then((reply) => link.send(reply));
            break;
          case 'hello':
            // a child agent that opened this link to fork from here: a parent may push to it on it
            if (frame.version === PROTOCOL_VERSION && frame.info.role === 'peer' && typeof frame.info.node === 'string') this.forks.introduced(frame.info.node, link);
            link.send(
              frame.version === PROTOCOL_VERSION
                ? encodeHello({ id: frame.id, version: PROTOCOL_VERSION, info: this.info() as unknown as Record<string, unknown> })
                : errorResponse(frame.id, 'bad-request', `protocol version mismatch: the peer speaks version ${frame.version}, agent ${this.opts.node} speaks version ${PROTOCOL_VERSION}`),
            );
            break;
          case 'put-module':
            link.send(this.putModule(frame));
            break;
          case 'snapshot-register':
            void this.forks.snapshotRegister(frame).then((reply) => link.send(reply));
            break;
          case 'push-to':
            void this.forks.pushTo(frame).then((reply) => link.send(reply));
            break;
          case 'fork-from':
            void this.forks.forkFrom(frame).then((reply) => {
              link.send(reply);
              this.lastForkRss = process.memoryUsage.rss();
            });
            break;
          case 'restart':
            void this.restart(frame.variant).then(
              () => link.send(encodeResponse({ id: frame.id, status: 'ok', serverNs: 0, payload: PONG })),
              (e: Error) => link.send(errorResponse(frame.id, 'bad-request', e.message)),
            );
            break;
          default:
            link.send(errorResponse(frame.id, 'bad-request', `an agent does not take ${frame.type} frames`));
        }
      }
    });
  }

  private putModule(f: PutModuleFrame): Buffer {
    try {
      const e = this.opts.store.put(f.kind, f.sha256, f.bytes);
      // peers may read a module's bytes from here (a node fetching it from another, not the gateway)
      if (!this.opts.regions.has(e.name)) this.opts.regions.register(e.name, Buffer.from(f.bytes));
      return encodeResponse({ id: f.id, status: 'ok', serverNs: 0, payload: Buffer.from(e.name) });
    } catch (e) {
      return errorResponse(f.id, 'bad-request', (e as Error).message);
    }
  }

  /** Tears down `name`'s instances (every variant's for "") and starts it afresh. */
  async restart(name: string): Promise<void> {
    const names = name === '' ? [...this.variants.keys()] : [name];
    for (const n of names) {
      const v = this.variants.get(n);
      if (!v) throw new Error(`agent ${this.opts.node} serves ${[...this.variants.keys()].join(', ')}, not "${n}"`);
      await v.variant.teardown();
      await this.startVariant(n);
    }
  }

  private lookup(name: string): FunctionEntry {
    return name.startsWith(HASH_PREFIX) ? this.opts.store.get(name) : this.opts.catalog.get(name);
  }

  private async invoke(f: InvokeFrame): Promise<Buffer | FrameBytes> {
    const served = this.variants.get(f.variant);
    if (!served) return errorResponse(f.id, 'bad-request', `agent ${this.opts.node} serves ${[...this.variants.keys()].map((n) => `"${n}"`).join(', ')}, not "${f.variant}"`);
    const { variant } = served;
    let fn: FunctionEntry;
    try {
      fn = this.lookup(f.fn);
    } catch (e) {
      return errorResponse(f.id, 'bad-request', (e as Error).message);
    }
    if (!variant.modes.includes(f.mode)) {
      return errorResponse(f.id, 'unavailable', `variant ${variant.name} has no mode "${f.mode}"; its modes: ${variant.modes.join(', ')}`);
    }
    const why = variant.supports(fn, f.mode);
    if (why) return errorResponse(f.id, 'unavailable', why);
    try {
      const r = await variant.invoke(fn, f.mode, f.payload, { timeoutMs: f.timeoutMs });
      return responseFrame({ id: f.id, status: 'ok', serverNs: r.elapsedNs, payload: r.output });
    } catch (e) {
      if (e instanceof InvokeError) return errorResponse(f.id, e.kind, e.message);
      return errorResponse(f.id, 'function-error', `${fn.name}: ${(e as Error).message ?? String(e)}`);
    }
  }

  private forker(json: Record<string, unknown>): { fn: FunctionEntry; forker: RemoteForker } {
    const name = String(json.variant);
    const served = this.variants.get(name);
    if (!served) throw new Error(`agent ${this.opts.node} serves ${[...this.variants.keys()].map((n) => `"${n}"`).join(', ')}, not "${name}"`);
    if (!isRemoteForker(served.variant)) throw new Error(`variant ${name} cannot snapshot or fork remotely`);
    return { fn: this.lookup(String(json.fn)), forker: served.variant };
  }

  async teardown(): Promise<void> {
    this.forks.close();
    await Promise.allSettled([...this.variants.values()].map((v) => v.variant.teardown()));
  }
}

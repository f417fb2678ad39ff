// One variant's use of a daemon (dockerd, containerd): acquired once, on the first check; what was
// loaded into it (images) is remembered per daemon; teardown lets it go, and a later call acquires it
// afresh. A teardown that races an acquisition lets the late daemon go at once.
import type { Capability } from '../../platform/variant.js';
import { acquireDaemon, type Acquired, type DaemonHandle, type DaemonKind } from './daemon.js';

export class DaemonUse {
  private acquiring: Promise<Acquired> | undefined;
  /** bumped by release: an acquisition begun before it is let go */
  private generation = 0;
  private readonly loaded = new Map<string, Promise<string>>();
  /** the daemon in use, once acquired */
  handle: DaemonHandle | undefined;

  /** `onAcquired`: run once per acquired daemon, before any call uses it (e.g. remove a dead run's containers) */
  constructor(private readonly kind: DaemonKind, private readonly onAcquired: () => Promise<void>) {}

  async acquire(): Promise<Capability> {
    const generation = this.generation;
    this.acquiring ??= acquireDaemon(this.kind).then(async (a) => {
      if (!a.ok) return a;
      if (generation !== this.generation) {
        await a.handle.release();
        return { ok: false as const, reason: 'the variant was torn down while its daemon was being acquired' };
      }
      this.handle = a.handle;
      await this.onAcquired();
      return a;
    });
    const a = await this.acquiring;
    return a.ok ? { ok: true } : { ok: false, reason: a.reason };
  }

  /** `load()`'s result for `key`, loaded once per daemon (a failed load is tried again next time) */
  once(key: string, load: () => Promise<string>): Promise<string> {
    let p = this.loaded.get(key);
    if (!p) {
      p = load();
      this.loaded.set(key, p);
      p.catch(() => this.loaded.delete(key));
    }
    return p;
  }

  /** Forgets the daemon and what was loaded into it; `cleanup` (remove our containers) runs before the
   *  daemon is let go, which stops it when this was its last user. Resolves whether a daemon was in use. */
  async release(cleanup: (handle: DaemonHandle) => Promise<void>): Promise<boolean> {
    this.generation++;
    this.acquiring = undefined;
    this.loaded.clear();
    const h = this.handle;
    if (!h) return false;
    await cleanup(h);
    await h.release();
    this.handle = undefined;
    return true;
  }
}

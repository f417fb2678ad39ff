// Everything this process attached, pinned or created, released by detachAll() and on exit.

/** Something this process attached, pinned or created in the kernel. detach() is idempotent. */
export interface AttachHandle {
  readonly description: string;
  readonly detached: boolean;
  detach(): void;
}

const registry = new Set<Handle>();
let nextSeq = 1;
let hooksInstalled = false;

export class Handle implements AttachHandle {
  private release: (() => void) | null;
  /** creation order: detachAll releases newest first within an order class */
  readonly seq = nextSeq++;
  constructor(
    readonly description: string,
    /** lower first in detachAll: 0 links/attachments, 1 ring buffers, 2 pins, 3 cgroups, 4 objects */
    readonly order: number,
    release: () => void,
  ) {
    this.release = release;
    registry.add(this);
    installExitHooks();
  }
  get detached(): boolean {
    return this.release === null;
  }
  detach(): void {
    const r = this.release;
    if (r === null) return;
    this.release = null;
    registry.delete(this);
    r();
  }
}

/** Descriptions of everything currently attached, pinned or open (this process). */
export function attachedResources(): string[] {
  return [...registry].map((h) => h.description);
}

/** Releases everything in the registry (links first, objects last). Returns what it released; never throws. */
export function detachAll(): string[] {
  const done: string[] = [];
  const handles = [...registry].sort((a, b) => a.order - b.order || b.seq - a.seq);
  for (const h of handles) {
    try {
      h.detach();
      done.push(h.description);
    } catch (err) {
      done.push(`${h.description} (release failed: ${(err as Error).message})`);
    }
  }
  return done;
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => void detachAll());
  // A monitor, not a handler: it must not change what an uncaught exception does (print, exit 1).
  process.on('uncaughtExceptionMonitor', () => void detachAll());
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = (): void => {
      detachAll();
      // Listening to a signal disables Node's default action. When nobody else listens, restore it.
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
}


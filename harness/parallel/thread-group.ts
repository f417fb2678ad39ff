// The threads of one parallel instance (WASM threads, thread-spawn, eBPF), and how they are taken down:
// a failure stops them all and leaves the instance refusing further runs with the reason; close() tells
// them to leave (each kind has its own stop word) and waits until they have.
import type { Worker } from 'node:worker_threads';

export class ThreadTrapError extends Error {
  override name = 'ThreadTrapError';
}

export abstract class ThreadGroup {
  protected workers: Worker[] = [];
  /** why the instance is down, once it is */
  protected dead: string | null = null;

  /** tells every thread to leave */
  protected abstract signalStop(): void;

  /** stops one thread once told to leave: terminated at once unless a kind needs more care */
  protected stopThread(w: Worker): Promise<unknown> {
    return w.terminate();
  }

  protected takeDown(why: string): never {
    this.dead = why;
    void this.close();
    throw new ThreadTrapError(why);
  }

  /** stops every thread; idempotent */
  async close(): Promise<void> {
    const ws = this.workers;
    this.workers = [];
    this.dead ??= 'closed';
    this.signalStop();
    await Promise.all(ws.map((w) => this.stopThread(w)));
  }
}

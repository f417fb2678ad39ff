// One koffi worker thread waits (epoll, in the shim) on every connection's completion channel; what is ready is handed to its handlers on the main thread. The wait is outstanding only
// while something is watched, so an idle process can exit.
import { S } from './ffi.js';

export interface Watched {
  /** the completion channel fired */
  onCq(): void;
}

class Dispatcher {
  private readonly watched = new Map<number, Watched>();
  private waiting = false;
  private readonly ready = new BigUint64Array(64);

  add(id: number, w: Watched): void {
    this.watched.set(id, w);
    this.arm();
  }

  remove(id: number): void {
    this.watched.delete(id);
    if (!this.watched.size && this.waiting) S().fxh_wake(); // let the pending wait return, so the process may exit
  }

  private arm(): void {
    if (this.waiting || !this.watched.size) return;
    this.waiting = true;
    S().fxh_wait.async(this.ready, 64, 1000, (err: unknown, n: number) => {
      this.waiting = false;
      if (err) throw err;
      for (let i = 0; i < n; i++) {
        const v = this.ready[i]!;
        const w = this.watched.get(Number(v >> 1n));
        if (!w) continue;
        try {
          w.onCq();
        } catch (e) {
          process.nextTick(() => {
            throw e;
          });
        }
      }
      this.arm();
    });
  }
}

let d: Dispatcher | null = null;

export function dispatcher(): Dispatcher {
  d ??= new Dispatcher();
  return d;
}

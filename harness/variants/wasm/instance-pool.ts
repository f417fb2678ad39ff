// A pool of fresh, uninitialised instances whose memory is already grown to a snapshot's size, made
// between forks, off the fork's clock (what it costs is reported by fill()). Prefaulted, their memory
// is also written once per OS page, so a fork's copy does not pay the page faults (~0.27 ms per MiB
// here); a copy-on-write fork (cow-image.ts) maps over the memory instead, and wants it untouched.
import type { Live } from './engine.js';
import { freshInstance, type ForkImage } from './snapshot.js';
import type { Snapshot } from './snapshot-format.js';

const OS_PAGE = 4096;

export class InstancePool {
  private readonly free: Live[] = [];
  /** ns spent filling, in total, and instances made */
  fillNs = 0;
  made = 0;

  constructor(
    readonly img: ForkImage,
    readonly snapshot: Snapshot,
    readonly size: number,
    readonly prefaulted = true,
  ) {}

  get available(): number {
    return this.free.length;
  }

  /** A fresh instance, or undefined when the pool is empty. */
  take(): Live | undefined {
    return this.free.pop();
  }

  /** Tops the pool up to `size` instances; returns the ns it took. */
  fill(): number {
    const t0 = process.hrtime.bigint();
    while (this.free.length < this.size) {
      const live = freshInstance(this.img, this.snapshot.meta.wasi.args, this.snapshot.memoryBytes);
      if (this.prefaulted) prefault(new Uint8Array(live.memory.buffer), this.img.initial);
      this.free.push(live);
      this.made++;
    }
    const ns = Number(process.hrtime.bigint() - t0);
    this.fillNs += ns;
    return ns;
  }

  clear(): void {
    this.free.length = 0;
  }
}

/** Writes every OS page of `mem` once without changing it (a fresh instance's memory is `initial`, then zeroes). */
export function prefault(mem: Uint8Array, initial: Uint8Array): void {
  const n = Math.min(initial.length, mem.length);
  for (let o = 0; o < n; o += OS_PAGE) mem[o] = initial[o]!;
  if (mem.length > n) mem.fill(0, n);
}

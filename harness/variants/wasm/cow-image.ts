// Copy-on-write local fork, as Wasmtime's memory images and Faasm's snapshots do it: a snapshot's whole
// memory image is written once into a memfd; a fork maps it over a fresh instance's memory, at the
// memory's own address (mmap MAP_PRIVATE | MAP_FIXED), so the fork copies no byte. The kernel shares
// the image's pages with every child and copies a page when a child first writes it: the child's
// first call pays those faults, so its first response includes what the fork left out.
// V8 owns the memory's mapping; replacing its pages in place keeps the address, length and access V8
// gave them, and V8 frees the mapping (ours with it) when it frees the memory.
import { C, address, errno } from '../../platform/libc.js';
import { checkRestorable, forEachPageRun, setGlobals, type ForkImage } from './snapshot.js';
import type { Live } from './engine.js';
import { SnapshotError, type Snapshot } from './snapshot-format.js';

const MFD_CLOEXEC = 1;
const PROT_READ_WRITE = 3;
const MAP_PRIVATE = 0x02;
const MAP_FIXED = 0x10;

const failed = (what: string) => new SnapshotError(`copy-on-write fork: ${what} failed (errno ${errno()})`);

/** A snapshot's memory image in a memfd, ready to be mapped copy-on-write into children. */
export class CowImage {
  private fd: number;

  private constructor(
    fd: number,
    readonly snapshot: Snapshot,
    readonly bytes: number,
  ) {
    this.fd = fd;
  }

  /** The image of `s` in a new memfd: the initial image, zeroes (the file's own), its pages over them;
   *  written piece by piece, so no second copy of the whole memory is made. */
  static create(img: ForkImage, s: Snapshot): CowImage {
    checkRestorable(img, s);
    const c = C();
    const fd = c.memfd_create(`fxh-snapshot-${img.code.name}`, MFD_CLOEXEC);
    if (fd < 0) throw failed('memfd_create');
    const put = (bytes: Uint8Array, at: number) => {
      for (let o = 0; o < bytes.length; ) {
        const n = c.pwrite(fd, bytes.subarray(o), bytes.length - o, at + o);
        if (n <= 0) throw failed(`pwrite at ${at + o}`);
        o += n;
      }
    };
    try {
      if (c.ftruncate(fd, s.memoryBytes) !== 0) throw failed('ftruncate');
      put(img.initial.subarray(0, Math.min(img.initial.length, s.memoryBytes)), 0);
      forEachPageRun(s, put);
    } catch (e) {
      c.close(fd);
      throw e;
    }
    return new CowImage(fd, s, s.memoryBytes);
  }

  /**
   * A child of the snapshot: `target` (a fresh instance of `img`, never run, its memory the snapshot's
   * size) gets the image mapped over its memory and the snapshot's globals.
   */
  forkInto(img: ForkImage, target: Live): Live {
    if (this.fd < 0) throw new SnapshotError('copy-on-write fork: the image was closed');
    checkRestorable(img, this.snapshot);
    const mem = new Uint8Array(target.memory.buffer);
    if (mem.length !== this.bytes) throw new SnapshotError(`internal: target memory ${mem.length} bytes, snapshot ${this.bytes}`);
    // MAP_FIXED maps at `mem`'s address or fails (MAP_FAILED, (void *) -1)
    const got = address(C().mmap(mem, this.bytes, PROT_READ_WRITE, MAP_PRIVATE | MAP_FIXED, this.fd, 0));
    if (got === -1n || got === 0xffffffffffffffffn) throw failed('mmap');
    setGlobals(img, this.snapshot, target);
    return target;
  }

  close(): void {
    if (this.fd >= 0) C().close(this.fd);
    this.fd = -1;
  }
}

// What a socket made with net.connect's `onread` reads into: a buffer its link chooses per read (the
// link side is in link.ts: socketLink's `feed`).
import type net from 'node:net';

/** bytes of a ReadFeed's staging buffer: the most one read returns outside a routed body */
export const STAGING_BYTES = 256 << 10;

/**
 * The reads of a socket made with net.connect's `onread`: into one staging buffer the link parses
 * in place, or, while a streamed region read's sink offers room, straight into that room (the bytes
 * of a remote fork land in the instance's memory with no copy in user space). Reads before the link
 * attaches are kept.
 */
export class ReadFeed {
  private readonly staging = Buffer.allocUnsafe(STAGING_BYTES);
  /** whether the buffer handed to the last read was a sink's room */
  private inRoom = false;
  private chunk: ((bytes: Buffer) => void) | null = null;
  private placed: (n: number) => void = () => {};
  private next: () => { room: Uint8Array } | { upTo: number } = () => ({ upTo: STAGING_BYTES });
  private early: Buffer[] = [];
  readonly onread: net.OnReadOpts = {
    buffer: () => {
      const n = this.next();
      this.inRoom = 'room' in n;
      return 'room' in n ? n.room : this.staging.subarray(0, Math.max(1, Math.min(n.upTo, STAGING_BYTES)));
    },
    callback: (n) => {
      if (this.inRoom) this.placed(n);
      else if (this.chunk) this.chunk(this.staging.subarray(0, n));
      else this.early.push(Buffer.from(this.staging.subarray(0, n)));
      return true;
    },
  };

  /** `chunk`: bytes read into the staging buffer (overwritten by the next read); `placed`: n bytes read into the room `next` gave; `next`: a room, or how many bytes to read at most into staging */
  attach(chunk: (bytes: Buffer) => void, placed: (n: number) => void, next: () => { room: Uint8Array } | { upTo: number }): void {
    for (const b of this.early.splice(0)) chunk(b);
    this.chunk = chunk;
    this.placed = placed;
    this.next = next;
  }
}

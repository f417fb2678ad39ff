// A frame stream over a socket: split incoming bytes into frames (FrameReader, onFrames) and
// write outgoing frames (writeFrame). What a frame holds is protocol.ts's business.
import type net from 'node:net';
import { MAX_FRAME_BYTES, ProtocolError, decodeFrame, type Frame, type FrameBytes } from './protocol.js';

/** Writes a frame; a header and payload go out corked, i.e. in one writev. Returns socket.write's answer. */
export function writeFrame(socket: net.Socket, frame: Buffer | FrameBytes): boolean {
  if (Buffer.isBuffer(frame)) return socket.write(frame);
  const parts = frame as FrameBytes;
  if (parts.length === 1) return socket.write(parts[0]);
  socket.cork();
  socket.write(parts[0]);
  const ok = socket.write(parts[1]);
  socket.uncork();
  return ok;
}

/** Where a routed frame's body goes, piece by piece as it arrives (see FrameReader's router). */
export interface PayloadSink {
  /** `bytes` (valid only during the call) sit at `at` within the body after its routing head */
  data(bytes: Uint8Array, at: number): void;
  /** the body is complete */
  end(): void;
  /**
   * Optional, for a transport that can read straight into place: a view where the body's bytes from
   * `at` on belong (at most `max` bytes), or null. Bytes a read put there are announced with placed(),
   * not data().
   */
  room?(at: number, max: number): Uint8Array | null;
  placed?(at: number, n: number): void;
}

/** A sink that collects a body into `into` (read there where the transport can) */
export const sinkInto = (into: Uint8Array): PayloadSink => ({ data: (b, at) => into.set(b, at), room: (at, max) => into.subarray(at, at + max), placed: () => {}, end: () => {} });

/**
 * `sink` guarded for a routed body that should be `length` bytes (`got` came): a sink that throws fails
 * the body and the rest of its bytes are dropped; `done` gets the failure, or null, after its last byte.
 */
export function guardedSink(sink: PayloadSink, length: number, got: number, short: () => string, done: (failed: Error | null) => void): PayloadSink {
  let failed: Error | null = got === length ? null : new Error(short());
  const guard = (f: () => void) => {
    if (failed) return;
    try {
      f();
    } catch (e) {
      failed = e as Error;
    }
  };
  return {
    data: (b, at) => guard(() => sink.data(b, at)),
    room: (at, max) => {
      let view: Uint8Array | null = null;
      if (sink.room && sink.placed) guard(() => (view = sink.room!(at, max)));
      return view;
    },
    placed: (at, n) => guard(() => sink.placed!(at, n)),
    end() {
      guard(() => sink.end());
      done(failed);
    },
  };
}

/** A router's answer for a frame it cannot place yet: the reader stops before it, keeping its bytes, until release(). */
export const HOLD = Symbol('hold');

/** Sees a frame's first ROUTE_HEAD_BYTES body bytes and its body length; a sink takes the rest of that body, null leaves the frame whole, HOLD stops the reader before the frame. */
export type FrameRouter = (head: Buffer, bodyLength: number) => PayloadSink | null | typeof HOLD;

/** body bytes a router sees: type (u8), id (u32), and one more byte (region-data's status) */
export const ROUTE_HEAD_BYTES = 6;

/**
 * Splits a byte stream into frame bodies. Feed it every chunk; it returns the complete frames, or
 * hands them to `each` in order. With a router, a frame the router takes is not assembled: its bytes
 * go to the router's sink straight from the chunks (a large region read lands where it belongs, with
 * no joined copy), or, where the sink offers room() and the transport can use it (room(), placed()),
 * are read there by the kernel with no copy at all. Sinks are called during push, in stream order
 * with the frames given to `each`. A sink must not throw.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** bytes needed before anything can come out: chunks of a large frame are joined once, not per read */
  private need = 4;
  private sink: PayloadSink | null = null;
  private left = 0;
  private at = 0;

  constructor(private readonly router?: FrameRouter) {}

  push(chunk: Buffer): Buffer[] {
    const frames: Buffer[] = [];
    this.pushEach(chunk, (f) => frames.push(f));
    return frames;
  }

  /** stopped before a frame its router held (HOLD): what arrives is kept until release() */
  private holding = false;

  get held(): boolean {
    return this.holding;
  }

  /** `reused`: the chunk's memory is overwritten by the next read, so what outlives the call is copied (kept bytes, bodies given to `each`) */
  pushEach(chunk: Buffer, each: (body: Buffer) => void, reused = false): void {
    if (this.holding) {
      this.chunks.push(reused ? Buffer.from(chunk) : chunk);
      this.buffered += chunk.length;
      return;
    }
    let buf = chunk;
    if (this.buffered) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered < this.need) {
        if (reused) this.chunks[this.chunks.length - 1] = Buffer.from(chunk);
        return;
      }
      buf = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [];
      this.buffered = 0;
      reused = false; // a fresh concatenation
    }
    let o = 0;
    while (o < buf.length) {
      if (this.sink) {
        const n = Math.min(this.left, buf.length - o);
        const s = this.sink;
        s.data(buf.subarray(o, o + n), this.at);
        this.advance(n);
        o += n;
        continue;
      }
      const rest = buf.length - o;
      if (rest < 4) {
        this.keep(buf.subarray(o), 4, reused);
        return;
      }
      const len = buf.readUInt32LE(o);
      if (len > MAX_FRAME_BYTES) throw new ProtocolError(`frame length ${len} exceeds the ${MAX_FRAME_BYTES}-byte limit`);
      if (this.router && len >= ROUTE_HEAD_BYTES) {
        if (rest < 4 + ROUTE_HEAD_BYTES) {
          this.keep(buf.subarray(o), 4 + ROUTE_HEAD_BYTES, reused);
          return;
        }
        const s = this.router(buf.subarray(o + 4, o + 4 + ROUTE_HEAD_BYTES), len);
        if (s === HOLD) {
          this.keep(buf.subarray(o), Infinity, reused);
          this.holding = true;
          return;
        }
        if (s) {
          o += 4 + ROUTE_HEAD_BYTES;
          this.sink = s;
          this.left = len - ROUTE_HEAD_BYTES;
          this.at = 0;
          this.advance(0);
          continue;
        }
      }
      if (rest - 4 < len) {
        this.keep(buf.subarray(o), 4 + len, reused);
        return;
      }
      const body = buf.subarray(o + 4, o + 4 + len);
      each(reused ? Buffer.from(body) : body);
      o += 4 + len;
    }
  }

  /** Goes on from a held frame (its router is asked again), with what was kept since. */
  release(each: (body: Buffer) => void): void {
    if (!this.holding) return;
    this.holding = false;
    const kept = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    this.need = 4;
    this.pushEach(kept, each);
  }

  /** Bytes that finish what the reader is in (a routed body, or a frame it is joining); 0 at a frame boundary. */
  wants(): number {
    return this.sink ? this.left : this.buffered ? this.need - this.buffered : 0;
  }

  /** Where the next read should go: a view the current routed body offers (its room()), or null for the transport's own buffer. */
  room(): Uint8Array | null {
    if (!this.sink?.room || this.buffered) return null;
    const r = this.sink.room(this.at, this.left);
    return r && r.length > 0 && r.length <= this.left ? r : null;
  }

  /** The last read put `n` bytes into the view room() gave. */
  placed(n: number): void {
    const s = this.sink!;
    s.placed!(this.at, n);
    this.advance(n);
  }

  private advance(n: number): void {
    this.at += n;
    this.left -= n;
    if (this.left === 0 && this.sink) {
      const s = this.sink;
      this.sink = null;
      s.end();
    }
  }

  private keep(rest: Buffer, need: number, reused: boolean): void {
    this.chunks = [reused ? Buffer.from(rest) : rest];
    this.buffered = rest.length;
    this.need = need;
  }
}

/**
 * Calls `onBatch` with the decoded frames of every chunk that arrives on `socket`. A corrupt stream
 * (bad length) ends the connection; a frame that does not decode is passed on as an Error.
 */
export function onFrames(socket: net.Socket, onBatch: (frames: (Frame | ProtocolError)[]) => void): void {
  const reader = new FrameReader();
  socket.on('data', (chunk: Buffer) => {
    let bodies: Buffer[];
    try {
      bodies = reader.push(chunk);
    } catch (e) {
      socket.destroy(e as Error);
      return;
    }
    onBatch(bodies.map((b) => {
      try {
        return decodeFrame(b);
      } catch (e) {
        return e as ProtocolError;
      }
    }));
  });
}

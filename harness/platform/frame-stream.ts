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

/** Splits a byte stream into frame bodies. Feed it every chunk; it returns the complete frames. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** bytes needed before anything can come out: chunks of a large frame are joined once, not per read */
  private need = 4;

  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered < this.need) return [];
    const frames: Buffer[] = [];
    let buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    let o = 0;
    this.need = 4;
    while (buf.length - o >= 4) {
      const len = buf.readUInt32LE(o);
      if (len > MAX_FRAME_BYTES) throw new ProtocolError(`frame length ${len} exceeds the ${MAX_FRAME_BYTES}-byte limit`);
      if (buf.length - o - 4 < len) {
        this.need = 4 + len;
        break;
      }
      frames.push(buf.subarray(o + 4, o + 4 + len));
      o += 4 + len;
    }
    buf = buf.subarray(o);
    this.chunks = buf.length ? [buf] : [];
    this.buffered = buf.length;
    return frames;
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

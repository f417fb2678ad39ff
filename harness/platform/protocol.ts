// The compact binary invocation protocol spoken between clients, the gateway and executors.
// Every frame: u32le length of the rest, then u8 type.
//   invoke:   u32 id, u8 mode, u8 len + variant, u8 len + function, u32 timeoutMs, payload
//   response: u32 id, u8 status, f64 serverNs, payload (output, or a UTF-8 error message)
//   splice:   u32 id, u32 timeoutMs, u8 len + variant   (client -> gateway: join this connection to
//             an executor of the variant in the kernel; timeoutMs bounds every later call on it)
//   ping:     u32 id                                     (gateway -> executor: answered with an ok
//             response when the executor's event loop is free; a stuck executor does not answer)
import { MODES, type Mode } from './variant.js';

export const FRAME_INVOKE = 1;
export const FRAME_RESPONSE = 2;
export const FRAME_SPLICE = 3;
export const FRAME_PING = 4;
/** frames larger than this are refused: a corrupt length must not make us buffer gigabytes */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

export const STATUS = {
  ok: 0,
  'function-error': 1,
  timeout: 2,
  'memory-limit': 3,
  'invalid-module': 4,
  unavailable: 5,
  'bad-request': 6,
  'executor-lost': 7,
} as const;
export type Status = keyof typeof STATUS;
const STATUS_NAMES = Object.fromEntries(Object.entries(STATUS).map(([k, v]) => [v, k])) as Record<number, Status>;

export interface InvokeFrame {
  id: number;
  mode: Mode;
  variant: string;
  fn: string;
  timeoutMs: number;
  payload: Uint8Array;
}

export interface ResponseFrame {
  id: number;
  status: Status;
  serverNs: number;
  payload: Uint8Array;
}

export interface SpliceFrame {
  id: number;
  timeoutMs: number;
  variant: string;
}

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/**
 * Payloads from this size on are written after their header, not copied into one frame buffer:
 * a copy into a fresh 1 MiB buffer costs ~0.27 ms on the 2-vCPU VM, mostly page faults (0.04 ms
 * into a reused one), and a gateway hop made three such copies. Smaller frames stay one buffer,
 * so each is one message on the socket, as the sockmap proof counts them.
 */
export const SEPARATE_PAYLOAD_BYTES = 64 * 1024;

/** A frame as it goes to a socket: one buffer, or a header and the payload (one writev: writeFrame). */
export type FrameBytes = readonly [Buffer] | readonly [Buffer, Uint8Array];

function withPayload(header: Buffer, payload: Uint8Array): FrameBytes {
  if (payload.length >= SEPARATE_PAYLOAD_BYTES) return [header, payload];
  const buf = Buffer.allocUnsafe(header.length + payload.length);
  header.copy(buf, 0);
  buf.set(payload, header.length);
  return [buf];
}

/** One buffer holding the whole frame. */
export function joinFrame(parts: FrameBytes): Buffer {
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/** Writes a frame; a header and payload go out corked, i.e. in one writev. Returns socket.write's answer. */
export function writeFrame(socket: import('node:net').Socket, frame: Buffer | FrameBytes): boolean {
  if (Buffer.isBuffer(frame)) return socket.write(frame);
  const parts = frame as FrameBytes;
  if (parts.length === 1) return socket.write(parts[0]);
  socket.cork();
  socket.write(parts[0]);
  const ok = socket.write(parts[1]);
  socket.uncork();
  return ok;
}

export function invokeFrame(f: InvokeFrame): FrameBytes {
  const variant = Buffer.from(f.variant, 'utf8');
  const fn = Buffer.from(f.fn, 'utf8');
  if (variant.length > 255 || fn.length > 255) throw new ProtocolError('variant and function names must be at most 255 bytes');
  const modeIndex = MODES.indexOf(f.mode);
  if (modeIndex < 0) throw new ProtocolError(`unknown mode ${f.mode}`);
  const headLen = 1 + 4 + 1 + 1 + variant.length + 1 + fn.length + 4;
  const head = Buffer.allocUnsafe(4 + headLen);
  let o = head.writeUInt32LE(headLen + f.payload.length, 0);
  o = head.writeUInt8(FRAME_INVOKE, o);
  o = head.writeUInt32LE(f.id >>> 0, o);
  o = head.writeUInt8(modeIndex, o);
  o = head.writeUInt8(variant.length, o);
  o += variant.copy(head, o);
  o = head.writeUInt8(fn.length, o);
  o += fn.copy(head, o);
  head.writeUInt32LE(f.timeoutMs >>> 0, o);
  return withPayload(head, f.payload);
}

export function encodeInvoke(f: InvokeFrame): Buffer {
  return joinFrame(invokeFrame(f));
}

export function responseFrame(f: ResponseFrame): FrameBytes {
  const head = Buffer.allocUnsafe(4 + 14);
  let o = head.writeUInt32LE(14 + f.payload.length, 0);
  o = head.writeUInt8(FRAME_RESPONSE, o);
  o = head.writeUInt32LE(f.id >>> 0, o);
  o = head.writeUInt8(STATUS[f.status], o);
  head.writeDoubleLE(f.serverNs, o);
  return withPayload(head, f.payload);
}

export function encodeResponse(f: ResponseFrame): Buffer {
  return joinFrame(responseFrame(f));
}

export function encodeSplice(f: SpliceFrame): Buffer {
  const variant = Buffer.from(f.variant, 'utf8');
  if (variant.length > 255) throw new ProtocolError('variant names must be at most 255 bytes');
  const bodyLen = 1 + 4 + 4 + 1 + variant.length;
  const buf = Buffer.allocUnsafe(4 + bodyLen);
  let o = buf.writeUInt32LE(bodyLen, 0);
  o = buf.writeUInt8(FRAME_SPLICE, o);
  o = buf.writeUInt32LE(f.id >>> 0, o);
  o = buf.writeUInt32LE(f.timeoutMs >>> 0, o);
  o = buf.writeUInt8(variant.length, o);
  variant.copy(buf, o);
  return buf;
}

export function encodePing(id: number): Buffer {
  const buf = Buffer.allocUnsafe(4 + 5);
  buf.writeUInt32LE(5, 0);
  buf.writeUInt8(FRAME_PING, 4);
  buf.writeUInt32LE(id >>> 0, 5);
  return buf;
}

export function errorResponse(id: number, status: Exclude<Status, 'ok'>, message: string): Buffer {
  return encodeResponse({ id, status, serverNs: 0, payload: Buffer.from(message, 'utf8') });
}

export type Frame = ({ type: 'invoke' } & InvokeFrame) | ({ type: 'response' } & ResponseFrame) | ({ type: 'splice' } & SpliceFrame) | { type: 'ping'; id: number };

export function decodeFrame(body: Buffer): Frame {
  if (body.length < 5) throw new ProtocolError(`frame of ${body.length} bytes is too short`);
  const type = body.readUInt8(0);
  const id = body.readUInt32LE(1);
  if (type === FRAME_INVOKE) {
    let o = 5;
    const mode = MODES[body.readUInt8(o++)];
    if (!mode) throw new ProtocolError(`frame ${id}: unknown mode index ${body.readUInt8(o - 1)}`);
    const vl = body.readUInt8(o++);
    const variant = body.toString('utf8', o, o + vl);
    o += vl;
    const fl = body.readUInt8(o++);
    const fn = body.toString('utf8', o, o + fl);
    o += fl;
    if (o + 4 > body.length) throw new ProtocolError(`frame ${id}: truncated invoke header`);
    const timeoutMs = body.readUInt32LE(o);
    o += 4;
    return { type: 'invoke', id, mode, variant, fn, timeoutMs, payload: body.subarray(o) };
  }
  if (type === FRAME_RESPONSE) {
    if (body.length < 14) throw new ProtocolError(`frame ${id}: truncated response header`);
    const status = STATUS_NAMES[body.readUInt8(5)];
    if (!status) throw new ProtocolError(`frame ${id}: unknown status ${body.readUInt8(5)}`);
    return { type: 'response', id, status, serverNs: body.readDoubleLE(6), payload: body.subarray(14) };
  }
  if (type === FRAME_SPLICE) {
    if (body.length < 10) throw new ProtocolError(`frame ${id}: truncated splice frame`);
    const timeoutMs = body.readUInt32LE(5);
    const vl = body.readUInt8(9);
    if (10 + vl > body.length) throw new ProtocolError(`frame ${id}: truncated splice frame`);
    return { type: 'splice', id, timeoutMs, variant: body.toString('utf8', 10, 10 + vl) };
  }
  if (type === FRAME_PING) return { type: 'ping', id };
  throw new ProtocolError(`unknown frame type ${type}`);
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
export function onFrames(socket: import('node:net').Socket, onBatch: (frames: (Frame | ProtocolError)[]) => void): void {
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

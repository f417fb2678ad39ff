// The compact binary invocation protocol spoken between clients, the gateway and executors.
// Every frame: u32le length of the rest, then u8 type.
//   invoke:   u32 id, u8 len + mode id, u8 len + variant, u8 len + function, u32 timeoutMs, payload
//   response: u32 id, u8 status, f64 serverNs, payload (output, or a UTF-8 error message)
//   splice:   u32 id, u32 timeoutMs, u8 len + variant   (client -> gateway: join this connection to
//             an executor of the variant in the kernel; timeoutMs bounds every later call on it)
//   ping:     u32 id                                     (gateway -> executor: answered with an ok
//             response when the executor's event loop is free; a stuck executor does not answer)
//   chain:    an invoke frame's fields, then u8 stages   (client -> gateway: call the function
//             `stages` times, each output the next input; answered by a response whose ok payload
//             is u8 n, n × (f64 hopNs, f64 serverNs), then the last output: see chainAnswerFrame)
// The node agent's frames (hello, put-module, restart) and one-sided region reads: agent-frames.ts.
// Splitting a socket's bytes into frames and writing frames to a socket: frame-stream.ts.
import type { Mode } from './variant.js';
import { decodeAgentFrame, type AgentFrame } from './agent-frames.js';
import { ProtocolError, joinFrame, withPayload, type FrameBytes } from './frame-bytes.js';

export const FRAME_INVOKE = 1;
export const FRAME_RESPONSE = 2;
export const FRAME_SPLICE = 3;
export const FRAME_PING = 4;
export const FRAME_CHAIN = 5;
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

export interface ChainFrame extends InvokeFrame {
  /** how many times the gateway calls the function, 1…255 */
  stages: number;
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

export { ProtocolError, SEPARATE_PAYLOAD_BYTES, joinFrame, type FrameBytes } from './frame-bytes.js';

/** An invoke frame, or with `stages` a chain frame (the same fields and one more byte). */
function callFrame(f: InvokeFrame, stages?: number): FrameBytes {
  const variant = Buffer.from(f.variant, 'utf8');
  const fn = Buffer.from(f.fn, 'utf8');
  if (variant.length > 255 || fn.length > 255) throw new ProtocolError('variant and function names must be at most 255 bytes');
  // by its id, not an index into a list: a variant declares its own modes (platform/modes.ts)
  const mode = Buffer.from(f.mode, 'latin1');
  if (!/^[a-z0-9][a-z0-9-]{0,63}$/.test(f.mode)) throw new ProtocolError(`mode ${JSON.stringify(f.mode)} is not a mode id (lower-case letters, digits and '-', at most 64)`);
  if (stages !== undefined && !(Number.isInteger(stages) && stages >= 1 && stages <= 255)) throw new ProtocolError(`a chain has 1 to 255 stages, not ${stages}`);
  const headLen = 1 + 4 + 1 + mode.length + 1 + variant.length + 1 + fn.length + 4 + (stages === undefined ? 0 : 1);
  const head = Buffer.allocUnsafe(4 + headLen);
  let o = head.writeUInt32LE(headLen + f.payload.length, 0);
  o = head.writeUInt8(stages === undefined ? FRAME_INVOKE : FRAME_CHAIN, o);
  o = head.writeUInt32LE(f.id >>> 0, o);
  o = head.writeUInt8(mode.length, o);
  o += mode.copy(head, o);
  o = head.writeUInt8(variant.length, o);
  o += variant.copy(head, o);
  o = head.writeUInt8(fn.length, o);
  o += fn.copy(head, o);
  o = head.writeUInt32LE(f.timeoutMs >>> 0, o);
  if (stages !== undefined) head.writeUInt8(stages, o);
  return withPayload(head, f.payload);
}

export function invokeFrame(f: InvokeFrame): FrameBytes {
  return callFrame(f);
}

export function chainFrame(f: ChainFrame): FrameBytes {
  return callFrame(f, f.stages);
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

/** The time of one stage of a chain, as the gateway saw it. */
export interface StageTiming {
  /** gateway -> executor -> gateway round trip */
  hopNs: number;
  /** the executor's time inside the function */
  serverNs: number;
}

/** The ok answer to a chain frame: a response (serverNs = Σ stages) carrying the stage timings before the output. */
export function chainAnswerFrame(id: number, stages: readonly StageTiming[], output: Uint8Array): FrameBytes {
  if (stages.length < 1 || stages.length > 255) throw new ProtocolError(`a chain answer has 1 to 255 stages, not ${stages.length}`);
  const head = Buffer.allocUnsafe(4 + 14 + 1 + 16 * stages.length);
  let o = head.writeUInt32LE(head.length - 4 + output.length, 0);
  o = head.writeUInt8(FRAME_RESPONSE, o);
  o = head.writeUInt32LE(id >>> 0, o);
  o = head.writeUInt8(STATUS.ok, o);
  o = head.writeDoubleLE(stages.reduce((a, s) => a + s.serverNs, 0), o);
  o = head.writeUInt8(stages.length, o);
  for (const s of stages) {
    o = head.writeDoubleLE(s.hopNs, o);
    o = head.writeDoubleLE(s.serverNs, o);
  }
  return withPayload(head, output);
}

/** The stage timings and the output in the payload of an ok answer to a chain frame. */
export function parseChainAnswer(payload: Uint8Array): { stages: StageTiming[]; output: Uint8Array } {
  const b = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  const n = b.length ? b.readUInt8(0) : 0;
  if (n < 1 || b.length < 1 + 16 * n) throw new ProtocolError(`a chain answer of ${b.length} bytes does not hold its stage timings`);
  const stages = Array.from({ length: n }, (_, i) => ({ hopNs: b.readDoubleLE(1 + 16 * i), serverNs: b.readDoubleLE(9 + 16 * i) }));
  return { stages, output: payload.subarray(1 + 16 * n) };
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

export type Frame =
  | ({ type: 'invoke' } & InvokeFrame)
  | ({ type: 'chain' } & ChainFrame)
  | ({ type: 'response' } & ResponseFrame)
  | ({ type: 'splice' } & SpliceFrame)
  | { type: 'ping'; id: number }
  | AgentFrame;

export function decodeFrame(body: Buffer): Frame {
  if (body.length < 5) throw new ProtocolError(`frame of ${body.length} bytes is too short`);
  const type = body.readUInt8(0);
  const id = body.readUInt32LE(1);
  if (type === FRAME_INVOKE || type === FRAME_CHAIN) {
    let o = 5;
    const ml = body.length > o ? body.readUInt8(o++) : 0;
    if (ml === 0 || o + ml > body.length) throw new ProtocolError(`frame ${id}: ${ml === 0 ? 'empty' : 'truncated'} mode id`);
    const mode = body.toString('latin1', o, o + ml);
    o += ml;
    const vl = body.readUInt8(o++);
    const variant = body.toString('utf8', o, o + vl);
    o += vl;
    const fl = body.readUInt8(o++);
    const fn = body.toString('utf8', o, o + fl);
    o += fl;
    if (o + 4 > body.length) throw new ProtocolError(`frame ${id}: truncated invoke header`);
    const timeoutMs = body.readUInt32LE(o);
    o += 4;
    if (type === FRAME_INVOKE) return { type: 'invoke', id, mode, variant, fn, timeoutMs, payload: body.subarray(o) };
    const stages = o < body.length ? body.readUInt8(o) : 0;
    if (stages < 1) throw new ProtocolError(`frame ${id}: a chain frame without its stage count (1…255)`);
    return { type: 'chain', id, mode, variant, fn, timeoutMs, stages, payload: body.subarray(o + 1) };
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
  const agentFrame = decodeAgentFrame(type, id, body);
  if (agentFrame) return agentFrame;
  throw new ProtocolError(`unknown frame type ${type}`);
}

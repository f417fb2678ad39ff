// Frames of the node agent protocol, beside protocol.ts's invoke/response/ping (same header: u32le
// length of the rest, u8 type, u32 id). Answers are response frames, except hello (answered by a
// hello) and region-read (answered by region-data, so a transport can serve reads below the
// application's request/response matching).
//   hello:       u32 id, u16 version, JSON (client -> agent: who asks; agent -> client: its capabilities)
//   put-module:  u32 id, u8 kind, 32 bytes sha256, the module's bytes
//   restart:     u32 id, u8 len + variant ("" = every variant): drop every instance, start afresh
//   region-read: u32 id, u64 offset, u32 length, u8 len + region id
//   region-data: u32 id, u8 status (0 ok, 1 error), the bytes or a UTF-8 error message
//   snapshot-register: u32 id, u32 n, n bytes of JSON {variant, fn, calls}, the input (parent: a warm
//                instance that served `calls` calls of the input, snapshotted into regions; answered
//                by a response whose payload is the SnapshotDescriptor's JSON)
//   fork-from:   u32 id, u32 n, n bytes of JSON {variant, fn, peer, snapshot, copy, push?}, the input
//                (child: fork from the peer's regions, serve the input once; answered by a response
//                whose payload is u32 n, n bytes of JSON (the ForkResult's numbers), the output; with
//                push {tag}, the pages it would read come as the peer's region-push pieces of that tag)
//   push-to:     u32 id, u32 n, n bytes of JSON {variant, fn, child, snapshot, copy, tag} (parent: send
//                the pieces a child forking from the snapshot reads before its answer, as region-push
//                frames on the link child node `child` opened to this agent; answered by a response)
//   region-push: u32 tag, u8 piece index (mod 256), the bytes: one piece, unasked, in plan order
//   push-failed: u32 tag, a UTF-8 message: the pieces of `tag` will not come
import { ProtocolError, type FrameBytes } from './frame-bytes.js';

/** Bumped whenever a frame changes meaning; a hello with another version is refused, naming both. */
export const PROTOCOL_VERSION = 5;

export const FRAME_HELLO = 6;
export const FRAME_PUT_MODULE = 7;
export const FRAME_RESTART = 8;
export const FRAME_REGION_READ = 9;
export const FRAME_REGION_DATA = 10;
export const FRAME_SNAPSHOT_REGISTER = 11;
export const FRAME_FORK_FROM = 12;
export const FRAME_REGION_PUSH = 13;
export const FRAME_PUSH_FAILED = 14;
export const FRAME_PUSH_TO = 15;

/** What a shipped module is, so the agent knows how to run it. */
export const MODULE_KINDS = ['wasm-reactor', 'wasm-command', 'native'] as const;
export type ModuleKind = (typeof MODULE_KINDS)[number];

export interface HelloFrame {
  id: number;
  version: number;
  info: Record<string, unknown>;
}
export interface PutModuleFrame {
  id: number;
  kind: ModuleKind;
  /** lower-case hex */
  sha256: string;
  bytes: Uint8Array;
}
export interface RegionReadFrame {
  id: number;
  region: string;
  offset: number;
  length: number;
}
export interface RegionDataFrame {
  id: number;
  ok: boolean;
  payload: Uint8Array;
}

export type AgentFrame =
  | ({ type: 'hello' } & HelloFrame)
  | ({ type: 'put-module' } & PutModuleFrame)
  | { type: 'restart'; id: number; variant: string }
  | ({ type: 'region-read' } & RegionReadFrame)
  | ({ type: 'region-data' } & RegionDataFrame)
  | ({ type: 'snapshot-register' } & JsonFrame)
  | ({ type: 'fork-from' } & JsonFrame)
  | ({ type: 'push-to' } & JsonFrame)
  | { type: 'push-failed'; id: number; message: string };

/** A frame of JSON fields and raw bytes (snapshot-register, fork-from). */
export interface JsonFrame {
  id: number;
  json: Record<string, unknown>;
  bytes: Uint8Array;
}

function head(type: number, id: number, bodyLen: number, extra: number): Buffer {
  const b = Buffer.allocUnsafe(4 + 5 + extra);
  b.writeUInt32LE(5 + bodyLen, 0);
  b.writeUInt8(type, 4);
  b.writeUInt32LE(id >>> 0, 5);
  return b;
}

function shortString(s: string, what: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > 255) throw new ProtocolError(`${what} must be at most 255 bytes`);
  return b;
}

export function encodeHello(f: HelloFrame): Buffer {
  const json = Buffer.from(JSON.stringify(f.info), 'utf8');
  const b = head(FRAME_HELLO, f.id, 2 + json.length, 2 + json.length);
  b.writeUInt16LE(f.version, 9);
  json.copy(b, 11);
  return b;
}

export function putModuleFrame(f: PutModuleFrame): FrameBytes {
  const kind = MODULE_KINDS.indexOf(f.kind);
  if (kind < 0) throw new ProtocolError(`module kind is one of ${MODULE_KINDS.join(', ')}, not "${f.kind}"`);
  if (!/^[0-9a-f]{64}$/.test(f.sha256)) throw new ProtocolError(`a module hash is 64 lower-case hex digits, not "${f.sha256}"`);
  const b = head(FRAME_PUT_MODULE, f.id, 33 + f.bytes.length, 33);
  b.writeUInt8(kind, 9);
  Buffer.from(f.sha256, 'hex').copy(b, 10);
  return [b, f.bytes];
}

export function encodeRestart(id: number, variant: string): Buffer {
  const v = shortString(variant, 'a variant name');
  const b = head(FRAME_RESTART, id, 1 + v.length, 1 + v.length);
  b.writeUInt8(v.length, 9);
  v.copy(b, 10);
  return b;
}

export function encodeRegionRead(f: RegionReadFrame): Buffer {
  const r = shortString(f.region, 'a region id');
  if (!(Number.isSafeInteger(f.offset) && f.offset >= 0)) throw new ProtocolError(`region offset ${f.offset} is not a non-negative integer`);
  if (!(Number.isInteger(f.length) && f.length >= 0 && f.length <= 0xffffffff)) throw new ProtocolError(`region read length ${f.length} is not a u32`);
  const b = head(FRAME_REGION_READ, f.id, 13 + r.length, 13 + r.length);
  b.writeBigUInt64LE(BigInt(f.offset), 9);
  b.writeUInt32LE(f.length, 17);
  b.writeUInt8(r.length, 21);
  r.copy(b, 22);
  return b;
}

export function regionDataFrame(id: number, ok: boolean, payload: Uint8Array): FrameBytes {
  const b = head(FRAME_REGION_DATA, id, 1 + payload.length, 1);
  b.writeUInt8(ok ? 0 : 1, 9);
  return [b, payload];
}

/** one pushed piece; routed by its head (type, tag, index) like a region read's answer */
export function regionPushFrame(tag: number, index: number, payload: Uint8Array): FrameBytes {
  const b = head(FRAME_REGION_PUSH, tag, 1 + payload.length, 1);
  b.writeUInt8(index & 0xff, 9);
  return [b, payload];
}

export function pushFailedFrame(tag: number, message: string): Buffer {
  const m = Buffer.from(message, 'utf8');
  const b = head(FRAME_PUSH_FAILED, tag, m.length, m.length);
  m.copy(b, 9);
  return b;
}

function jsonFrame(type: number, f: JsonFrame): FrameBytes {
  const json = Buffer.from(JSON.stringify(f.json), 'utf8');
  const b = head(type, f.id, 4 + json.length + f.bytes.length, 4 + json.length);
  b.writeUInt32LE(json.length, 9);
  json.copy(b, 13);
  return [b, f.bytes];
}

export const snapshotRegisterFrame = (f: JsonFrame): FrameBytes => jsonFrame(FRAME_SNAPSHOT_REGISTER, f);
export const forkFromFrame = (f: JsonFrame): FrameBytes => jsonFrame(FRAME_FORK_FROM, f);
export const pushToFrame = (f: JsonFrame): FrameBytes => jsonFrame(FRAME_PUSH_TO, f);

/** u32 n, n bytes of JSON, then raw bytes: a fork-from answer's payload */
export function jsonAndBytes(json: unknown, bytes: Uint8Array): Buffer {
  const j = Buffer.from(JSON.stringify(json), 'utf8');
  const b = Buffer.allocUnsafe(4 + j.length + bytes.length);
  b.writeUInt32LE(j.length, 0);
  j.copy(b, 4);
  b.set(bytes, 4 + j.length);
  return b;
}

export function splitJsonAndBytes(p: Uint8Array, what: string): { json: Record<string, unknown>; bytes: Uint8Array } {
  const b = Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  if (b.length < 4 || 4 + b.readUInt32LE(0) > b.length) throw new ProtocolError(`${what}: truncated (${b.length} bytes)`);
  const n = b.readUInt32LE(0);
  try {
    return { json: JSON.parse(b.toString('utf8', 4, 4 + n)) as Record<string, unknown>, bytes: b.subarray(4 + n) };
  } catch (e) {
    throw new ProtocolError(`${what}: does not carry JSON: ${(e as Error).message}`);
  }
}

/** The agent frame in `body` (type byte first), or null when `type` is not one of them. */
export function decodeAgentFrame(type: number, id: number, body: Buffer): AgentFrame | null {
  const need = (n: number, what: string) => {
    if (body.length < n) throw new ProtocolError(`frame ${id}: truncated ${what} frame (${body.length} bytes)`);
  };
  switch (type) {
    case FRAME_HELLO: {
      need(7, 'hello');
      let info: unknown;
      try {
        info = JSON.parse(body.toString('utf8', 7));
      } catch (e) {
        throw new ProtocolError(`frame ${id}: hello does not carry JSON: ${(e as Error).message}`);
      }
      return { type: 'hello', id, version: body.readUInt16LE(5), info: (info ?? {}) as Record<string, unknown> };
    }
    case FRAME_PUT_MODULE: {
      need(38, 'put-module');
      const kind = MODULE_KINDS[body.readUInt8(5)];
      if (!kind) throw new ProtocolError(`frame ${id}: unknown module kind ${body.readUInt8(5)}`);
      return { type: 'put-module', id, kind, sha256: body.toString('hex', 6, 38), bytes: body.subarray(38) };
    }
    case FRAME_RESTART: {
      need(6, 'restart');
      const n = body.readUInt8(5);
      need(6 + n, 'restart');
      return { type: 'restart', id, variant: body.toString('utf8', 6, 6 + n) };
    }
    case FRAME_REGION_READ: {
      need(18, 'region-read');
      const offset = body.readBigUInt64LE(5);
      const n = body.readUInt8(17);
      need(18 + n, 'region-read');
      if (offset > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError(`frame ${id}: region offset ${offset} is too large`);
      return { type: 'region-read', id, offset: Number(offset), length: body.readUInt32LE(13), region: body.toString('utf8', 18, 18 + n) };
    }
    case FRAME_REGION_DATA:
      need(6, 'region-data');
      return { type: 'region-data', id, ok: body.readUInt8(5) === 0, payload: body.subarray(6) };
    case FRAME_PUSH_FAILED:
      return { type: 'push-failed', id, message: body.toString('utf8', 5) };
    case FRAME_SNAPSHOT_REGISTER:
    case FRAME_FORK_FROM:
    case FRAME_PUSH_TO: {
      const what = type === FRAME_FORK_FROM ? 'fork-from' : type === FRAME_PUSH_TO ? 'push-to' : 'snapshot-register';
      const { json, bytes } = splitJsonAndBytes(body.subarray(5), `frame ${id}: ${what}`);
      return { type: what, id, json, bytes };
    }
    default:
      return null;
  }
}

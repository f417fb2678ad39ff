// The chain wire format (SPRIGHT-style function chains, experiment `chains`).
//
// Every message between the client and chain nodes starts with a 16-byte header:
//   u8 kind (1 copy: the payload follows the header; 2 descriptor: the payload is in the shared
//   file at `offset`; 3 error: a UTF-8 message follows), u8 stage (1-based index of the stage
//   the message is for; length+1 = back to the client), u8 length (stages in the chain),
//   u8 reserved, u32le seq, u32le offset, u32le length (payload bytes).
// A descriptor message is the header alone: 16 bytes on the socket, whatever the payload size.
//
// The shared file (/dev/shm/fxh-chain-*) holds per-stage time stamps at [0, STAMP_BYTES) and the
// payload region at PAYLOAD_OFFSET. Stage k (k = 1..16) owns the 32-byte slot at 32·k:
//   f64 received, f64 compute (ns inside the function: the wasm variant's own elapsedNs, the same
//   number an executor reports as serverNs), f64 sent, u32 seq of the request, u32 reserved.
// Times are CLOCK_MONOTONIC ns (process.hrtime, the same clock in every process). The client keeps
// stamps whose seq is not the request's out of the results (a stage that did not write them).
// Stamps are a side channel in both modes, so they never add to the bytes on the sockets.
export const HEADER_BYTES = 16;
export const KIND_COPY = 1;
export const KIND_DESC = 2;
export const KIND_ERROR = 3;
export const MAX_STAGES = 16;
export const STAMP_BYTES = 4096;
export const STAMP_SLOT = 32;
export const PAYLOAD_OFFSET = 4096;
/** the largest payload: 4 MiB (the experiment's largest is 1 MiB) */
export const MAX_PAYLOAD = 4 << 20;
export const SHM_BYTES = PAYLOAD_OFFSET + MAX_PAYLOAD;
if (STAMP_SLOT * (MAX_STAGES + 1) > STAMP_BYTES) throw new Error('chain wire: stamp slots overflow the stamp region');

export interface Header {
  kind: number;
  stage: number;
  length: number;
  seq: number;
  offset: number;
  bytes: number;
}

export function encodeHeader(h: Header): Buffer {
  const b = Buffer.allocUnsafe(HEADER_BYTES);
  b.writeUInt8(h.kind, 0);
  b.writeUInt8(h.stage, 1);
  b.writeUInt8(h.length, 2);
  b.writeUInt8(0, 3);
  b.writeUInt32LE(h.seq >>> 0, 4);
  b.writeUInt32LE(h.offset >>> 0, 8);
  b.writeUInt32LE(h.bytes >>> 0, 12);
  return b;
}

function decodeHeader(b: Buffer, o: number): Header {
  return { kind: b.readUInt8(o), stage: b.readUInt8(o + 1), length: b.readUInt8(o + 2), seq: b.readUInt32LE(o + 4), offset: b.readUInt32LE(o + 8), bytes: b.readUInt32LE(o + 12) };
}

/**
 * Splits a byte stream into messages (header + inline body for copy/error messages). Chunks are
 * kept in a list and joined once a message is complete, so a 1 MiB message arriving in 64 KiB
 * reads is copied once, not once per read.
 */
export class MessageReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** bytes needed before the next message can be complete (header first) */
  private need = HEADER_BYTES;

  push(chunk: Buffer): { h: Header; body: Buffer | null }[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered < this.need) return [];
    const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    const out: { h: Header; body: Buffer | null }[] = [];
    let o = 0;
    this.need = HEADER_BYTES;
    while (buf.length - o >= HEADER_BYTES) {
      const h = decodeHeader(buf, o);
      if (h.kind !== KIND_COPY && h.kind !== KIND_DESC && h.kind !== KIND_ERROR) throw new Error(`chain: bad message kind ${h.kind}`);
      const inline = h.kind === KIND_DESC ? 0 : h.bytes;
      if (inline > MAX_PAYLOAD) throw new Error(`chain: message of ${inline} bytes exceeds ${MAX_PAYLOAD}`);
      if (buf.length - o - HEADER_BYTES < inline) {
        this.need = HEADER_BYTES + inline;
        break;
      }
      // a view, not a copy: `buf` is a fresh concatenation or a socket read of its own, never reused
      out.push({ h, body: h.kind === KIND_DESC ? null : buf.subarray(o + HEADER_BYTES, o + HEADER_BYTES + inline) });
      o += HEADER_BYTES + inline;
    }
    const rest = buf.subarray(o);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }
}

export interface Stamp {
  recvNs: number;
  /** ns inside the function (the variant's elapsedNs) */
  computeNs: number;
  sendNs: number;
  seq: number;
}

/** Writes stage `stage`'s stamp slot into the shared file (one 32-byte pwrite). */
export function writeStamp(fd: number, stage: number, s: Stamp, fsw: (fd: number, b: Buffer, off: number, len: number, pos: number) => number): void {
  const b = Buffer.alloc(STAMP_SLOT);
  b.writeDoubleLE(s.recvNs, 0);
  b.writeDoubleLE(s.computeNs, 8);
  b.writeDoubleLE(s.sendNs, 16);
  b.writeUInt32LE(s.seq >>> 0, 24);
  fsw(fd, b, 0, STAMP_SLOT, stage * STAMP_SLOT);
}

/** Stage `stage`'s slot from a buffer holding the stamp region from offset 0. */
export function readStamp(b: Buffer, stage: number): Stamp {
  const o = stage * STAMP_SLOT;
  return { recvNs: b.readDoubleLE(o), computeNs: b.readDoubleLE(o + 8), sendNs: b.readDoubleLE(o + 16), seq: b.readUInt32LE(o + 24) };
}

export const nowNs = (): number => Number(process.hrtime.bigint());

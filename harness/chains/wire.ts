// The chain wire format (SPRIGHT-style function chains, experiment `chains`).
//
// Every message between the client and chain nodes starts with a 16-byte header:
//   u8 kind (1 copy: the payload follows the header; 2 descriptor: the payload is in the shared
//   file at `offset`; 3 error: a UTF-8 message follows), u8 stage (1-based index of the stage
//   the message is for; length+1 = back to the client), u8 length (stages in the chain),
//   u8 reserved, u32le seq, u32le offset, u32le length (payload bytes).
// A descriptor message is the header alone: 16 bytes on the socket, whatever the payload size.
//
// The shared file (/dev/shm/fxh-chain-*) holds the per-hop time stamps at [0, STAMP_BYTES) and the
// payload region at PAYLOAD_OFFSET. Stamp slots are f64 CLOCK_MONOTONIC ns (process.hrtime, the same
// clock in every process): slot 2k = stage k received, slot 2k+1 = stage k sent (k = 0: the client).
// Stamps are a side channel in both modes, so they never add to the bytes on the sockets.
export const HEADER_BYTES = 16;
export const KIND_COPY = 1;
export const KIND_DESC = 2;
export const KIND_ERROR = 3;
export const MAX_STAGES = 16;
export const STAMP_BYTES = 4096;
export const PAYLOAD_OFFSET = 4096;
export const MAX_PAYLOAD = 4 << 20;
export const SHM_BYTES = PAYLOAD_OFFSET + MAX_PAYLOAD;

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

/** Splits a byte stream into messages (header + inline body for copy/error messages). */
export class MessageReader {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): { h: Header; body: Buffer | null }[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: { h: Header; body: Buffer | null }[] = [];
    let o = 0;
    while (this.buf.length - o >= HEADER_BYTES) {
      const h = decodeHeader(this.buf, o);
      if (h.kind !== KIND_COPY && h.kind !== KIND_DESC && h.kind !== KIND_ERROR) throw new Error(`chain: bad message kind ${h.kind}`);
      const inline = h.kind === KIND_DESC ? 0 : h.bytes;
      if (inline > MAX_PAYLOAD) throw new Error(`chain: message of ${inline} bytes exceeds ${MAX_PAYLOAD}`);
      if (this.buf.length - o - HEADER_BYTES < inline) break;
      out.push({ h, body: h.kind === KIND_DESC ? null : Buffer.from(this.buf.subarray(o + HEADER_BYTES, o + HEADER_BYTES + inline)) });
      o += HEADER_BYTES + inline;
    }
    this.buf = o === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(o);
    return out;
  }
}

/** Writes the receive and send stamps of `stage` into the shared file (one 16-byte pwrite). */
export function writeStamps(fd: number, stage: number, recvNs: number, sendNs: number, fsw: (fd: number, b: Buffer, off: number, len: number, pos: number) => number): void {
  const b = Buffer.allocUnsafe(16);
  b.writeDoubleLE(recvNs, 0);
  b.writeDoubleLE(sendNs, 8);
  fsw(fd, b, 0, 16, stage * 16);
}

export const nowNs = (): number => Number(process.hrtime.bigint());

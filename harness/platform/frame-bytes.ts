// What a frame is on its way to a socket, and the protocol's error: shared by the frame encoders
// (protocol.ts, agent-frames.ts) so that neither imports the other.

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

export function withPayload(header: Buffer, payload: Uint8Array): FrameBytes {
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


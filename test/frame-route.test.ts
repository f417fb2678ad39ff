// FrameReader with a router: a routed frame's body goes to its sink piece by piece (or is read into
// the sink's room), in stream order with the frames around it, whatever the chunking; chunks whose
// memory is reused by the next read are copied where they must outlive the call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameReader, ROUTE_HEAD_BYTES, type PayloadSink } from '../harness/platform/frame-stream.js';
import { encodePing, decodeFrame, joinFrame } from '../harness/platform/protocol.js';
import { FRAME_REGION_DATA, regionDataFrame } from '../harness/platform/agent-frames.js';

const pattern = (n: number, k: number) => Buffer.alloc(n).map((_, i) => (i * 31 + k) & 0xff);

/** a stream: ping 1, region-data 7 (ok, 100 KB), ping 2, region-data 8 (refused), region-data 9 (ok, empty), ping 3 */
function stream() {
  const big = pattern(100_000, 7);
  const bytes = Buffer.concat([
    encodePing(1),
    joinFrame(regionDataFrame(7, true, big)),
    encodePing(2),
    joinFrame(regionDataFrame(8, false, Buffer.from('no such region'))),
    joinFrame(regionDataFrame(9, true, new Uint8Array(0))),
    encodePing(3),
  ]);
  return { big, bytes };
}

/** a reader routing ok region-data 7 and 9 (and 8, were it ok) to sinks that log what they get; `room` gives them room in `into` */
function setup(room: boolean) {
  const log: string[] = [];
  const into = new Map<number, Buffer>([[7, Buffer.alloc(100_000)], [9, Buffer.alloc(0)]]);
  const got = new Map<number, number>();
  const sink = (id: number): PayloadSink => ({
    data(b, at) {
      into.get(id)!.set(b, at);
      got.set(id, (got.get(id) ?? 0) + b.length);
      if (log.at(-1) !== `data ${id}`) log.push(`data ${id}`);
    },
    end: () => log.push(`end ${id}`),
    ...(room
      ? {
          room: (at: number, max: number) => into.get(id)!.subarray(at, at + Math.min(max, 3000)),
          placed(at: number, n: number) {
            got.set(id, (got.get(id) ?? 0) + n);
            if (log.at(-1) !== `data ${id}`) log.push(`data ${id}`);
          },
        }
      : {}),
  });
  const reader = new FrameReader((head, len) => {
    assert.equal(head.length, ROUTE_HEAD_BYTES);
    if (head[0] !== FRAME_REGION_DATA || head[5] !== 0) return null;
    const id = head.readUInt32LE(1);
    assert.ok(len >= ROUTE_HEAD_BYTES);
    return into.has(id) ? sink(id) : null;
  });
  const each = (body: Buffer) => {
    const f = decodeFrame(body);
    log.push(f.type === 'region-data' ? `frame ${f.id} ${f.ok ? 'ok' : 'refused'} ${Buffer.from(f.payload).toString()}` : `${f.type} ${f.id}`);
  };
  return { log, into, got, reader, each };
}

const WANT = ['ping 1', 'data 7', 'end 7', 'ping 2', 'frame 8 refused no such region', 'end 9', 'ping 3'];

test('routed bodies reach their sinks whole and in stream order, for every chunk size, chunks reused or not', () => {
  const { big, bytes } = stream();
  for (const size of [1, 5, 10, 11, 4096, 65_536, bytes.length]) {
    for (const reused of [false, true]) {
      const { log, into, got, reader, each } = setup(false);
      const scratch = Buffer.alloc(size);
      for (let o = 0; o < bytes.length; o += size) {
        const piece = bytes.subarray(o, Math.min(bytes.length, o + size));
        if (!reused) reader.pushEach(piece, each);
        else {
          // as a socket reading into one buffer: the next read overwrites it
          piece.copy(scratch);
          reader.pushEach(scratch.subarray(0, piece.length), each, true);
          scratch.fill(0xee);
        }
      }
      assert.deepEqual(log, WANT, `chunks of ${size}, reused ${reused}`);
      assert.ok(into.get(7)!.equals(big), `payload of 7, chunks of ${size}, reused ${reused}`);
      assert.equal(got.get(7), big.length);
      assert.equal(reader.wants(), 0);
    }
  }
});

test('a transport reading into the room a sink offers: the body lands there, announced by placed(); the rest as before', () => {
  const { big, bytes } = stream();
  for (const step of [3, 10, 4096, 70_000]) {
    const { log, into, got, reader, each } = setup(true);
    const staging = Buffer.alloc(step);
    let o = 0;
    let placedReads = 0;
    while (o < bytes.length) {
      // what a ReadFeed does: the sink's room, else at most what finishes the current step (or `step` at a frame boundary)
      const room = reader.room();
      if (room) {
        const n = Math.min(room.length, bytes.length - o, step);
        bytes.copy(room, 0, o, o + n);
        reader.placed(n);
        placedReads++;
        o += n;
      } else {
        const n = Math.min(reader.wants() || step, step, bytes.length - o);
        bytes.copy(staging, 0, o, o + n);
        reader.pushEach(staging.subarray(0, n), each, true);
        staging.fill(0xee);
        o += n;
      }
    }
    assert.deepEqual(log, WANT, `reads of ${step}`);
    assert.ok(into.get(7)!.equals(big), `payload of 7, reads of ${step}`);
    assert.equal(got.get(7), big.length);
    assert.ok(placedReads > 0, 'some bytes were read into place');
  }
});

test('wants(): the bytes that finish a partial frame or a routed body; room() only inside a routed body with room', () => {
  const { bytes } = stream();
  const { reader, each } = setup(true);
  const ping = encodePing(1).length;
  reader.pushEach(bytes.subarray(0, 2), each);
  assert.equal(reader.wants(), 2, 'the rest of a length prefix');
  assert.equal(reader.room(), null);
  reader.pushEach(bytes.subarray(2, ping + 4 + ROUTE_HEAD_BYTES + 100), each);
  assert.equal(reader.wants(), 100_000 - 100, 'the rest of the routed body');
  assert.equal(reader.room()!.length, 3000, 'the room the sink offers');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameReader, MAX_FRAME_BYTES, ProtocolError, decodeFrame, encodeInvoke, encodePing, encodeResponse, encodeSplice } from '../harness/platform/protocol.js';

test('an invoke frame round-trips, split at every byte boundary', () => {
  const payload = Buffer.from('hello, function');
  const frame = encodeInvoke({ id: 42, mode: 'cold-compile', variant: 'wasm', fn: 'sha256', timeoutMs: 1234, payload });
  for (let cut = 0; cut <= frame.length; cut++) {
    const r = new FrameReader();
    const got = [...r.push(frame.subarray(0, cut)), ...r.push(frame.subarray(cut))];
    assert.equal(got.length, 1, `cut at ${cut}`);
    const f = decodeFrame(got[0]!);
    assert.equal(f.type, 'invoke');
    if (f.type !== 'invoke') return;
    assert.deepEqual({ id: f.id, mode: f.mode, variant: f.variant, fn: f.fn, timeoutMs: f.timeoutMs }, { id: 42, mode: 'cold-compile', variant: 'wasm', fn: 'sha256', timeoutMs: 1234 });
    assert.equal(Buffer.from(f.payload).toString(), 'hello, function');
  }
});

test('several frames in one chunk come out in order', () => {
  const a = encodeResponse({ id: 1, status: 'ok', serverNs: 1500.5, payload: Buffer.from('a') });
  const b = encodeResponse({ id: 2, status: 'timeout', serverNs: 0, payload: Buffer.from('too slow') });
  const frames = new FrameReader().push(Buffer.concat([a, b])).map(decodeFrame);
  assert.deepEqual(frames.map((f) => [f.id, f.type === 'response' && f.status]), [[1, 'ok'], [2, 'timeout']]);
  const first = frames[0]!;
  assert.equal(first.type === 'response' && first.serverNs, 1500.5);
});

test('an empty payload is allowed', () => {
  const f = decodeFrame(new FrameReader().push(encodeInvoke({ id: 7, mode: 'warm', variant: 'native', fn: 'noop', timeoutMs: 1, payload: new Uint8Array(0) }))[0]!);
  assert.equal(f.type === 'invoke' && f.payload.length, 0);
});

test('splice and ping frames round-trip; a truncated splice frame is refused', () => {
  const [s, p] = new FrameReader().push(Buffer.concat([encodeSplice({ id: 9, timeoutMs: 2500, variant: 'wasm+sockmap' }), encodePing(10)])).map(decodeFrame);
  assert.deepEqual(s, { type: 'splice', id: 9, timeoutMs: 2500, variant: 'wasm+sockmap' });
  assert.deepEqual(p, { type: 'ping', id: 10 });
  const body = encodeSplice({ id: 1, timeoutMs: 1, variant: 'wasm' }).subarray(4);
  assert.throws(() => decodeFrame(body.subarray(0, body.length - 1)), /truncated splice/);
  assert.throws(() => decodeFrame(body.subarray(0, 8)), /truncated splice/);
});

test('corrupt input is refused with a clear error', () => {
  const huge = Buffer.alloc(4);
  huge.writeUInt32LE(MAX_FRAME_BYTES + 1);
  assert.throws(() => new FrameReader().push(huge), /exceeds/);
  assert.throws(() => decodeFrame(Buffer.from([9, 0, 0, 0, 0])), ProtocolError);
  assert.throws(() => decodeFrame(Buffer.from([1, 0, 0, 0, 0, 77])), /unknown mode/);
  assert.throws(() => encodeInvoke({ id: 1, mode: 'warm', variant: 'x'.repeat(300), fn: 'f', timeoutMs: 1, payload: Buffer.alloc(0) }), /255/);
});

test('a 1 MiB frame arriving in 4 KiB chunks, then a small one in the same stream, come out whole and in order', () => {
  const payload = Buffer.alloc(1 << 20);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
  const stream = Buffer.concat([encodeInvoke({ id: 1, mode: 'warm', variant: 'wasm', fn: 'chainstep', timeoutMs: 1, payload }), encodePing(2)]);
  const r = new FrameReader();
  const out: Buffer[] = [];
  for (let o = 0; o < stream.length; o += 4096) out.push(...r.push(stream.subarray(o, Math.min(stream.length, o + 4096))));
  const frames = out.map(decodeFrame);
  assert.deepEqual(frames.map((f) => f.type), ['invoke', 'ping']);
  const first = frames[0]!;
  assert.ok(first.type === 'invoke' && Buffer.from(first.payload).equals(payload));
});

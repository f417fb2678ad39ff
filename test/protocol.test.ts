import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { MAX_FRAME_BYTES, ProtocolError, SEPARATE_PAYLOAD_BYTES, chainAnswerFrame, chainFrame, decodeFrame, parseChainAnswer, encodeInvoke, encodePing, encodeResponse, encodeSplice, invokeFrame, joinFrame, responseFrame } from '../harness/platform/protocol.js';
import { FrameReader, onFrames, writeFrame } from '../harness/platform/frame-stream.js';

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

test('a mode travels by its id, so a mode no core list names (declared by a variant) arrives as sent', () => {
  for (const mode of ['local-fork', 'x9-new-mode', 'm'.repeat(64)]) {
    const f = decodeFrame(new FrameReader().push(encodeInvoke({ id: 3, mode, variant: 'v', fn: 'f', timeoutMs: 2, payload: Buffer.from('in') }))[0]!);
    assert.equal(f.type, 'invoke');
    if (f.type !== 'invoke') return;
    assert.deepEqual({ mode: f.mode, variant: f.variant, fn: f.fn, payload: Buffer.from(f.payload).toString() }, { mode, variant: 'v', fn: 'f', payload: 'in' });
  }
});

test('corrupt input is refused with a clear error', () => {
  const huge = Buffer.alloc(4);
  huge.writeUInt32LE(MAX_FRAME_BYTES + 1);
  assert.throws(() => new FrameReader().push(huge), /exceeds/);
  assert.throws(() => decodeFrame(Buffer.from([9, 0, 0, 0, 0])), ProtocolError);
  assert.throws(() => decodeFrame(Buffer.from([1, 0, 0, 0, 0, 77, 0x77])), /frame 0: truncated mode id/);
  assert.throws(() => decodeFrame(Buffer.from([1, 0, 0, 0, 0])), /frame 0: empty mode id/);
  assert.throws(() => decodeFrame(Buffer.from([1, 0, 0, 0, 0, 0, 4])), /frame 0: empty mode id/);
  for (const mode of ['', 'Warm', 'a b', 'x'.repeat(65)]) {
    assert.throws(() => encodeInvoke({ id: 1, mode, variant: 'wasm', fn: 'f', timeoutMs: 1, payload: Buffer.alloc(0) }), /is not a mode id/, JSON.stringify(mode));
  }
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

test('a large payload is sent after its header, uncopied; a small frame stays one buffer', () => {
  const big = Buffer.alloc(SEPARATE_PAYLOAD_BYTES, 7);
  const inv = invokeFrame({ id: 3, mode: 'warm', variant: 'wasm', fn: 'chainstep', timeoutMs: 9, payload: big });
  assert.equal(inv.length, 2);
  assert.equal(inv[1], big, 'the payload itself, not a copy');
  assert.ok(joinFrame(inv).equals(encodeInvoke({ id: 3, mode: 'warm', variant: 'wasm', fn: 'chainstep', timeoutMs: 9, payload: big })));
  const f = decodeFrame(new FrameReader().push(joinFrame(inv))[0]!);
  assert.ok(f.type === 'invoke' && f.timeoutMs === 9 && Buffer.from(f.payload).equals(big));
  const res = responseFrame({ id: 4, status: 'ok', serverNs: 2.5, payload: big });
  assert.equal(res.length, 2);
  const g = decodeFrame(new FrameReader().push(joinFrame(res))[0]!);
  assert.ok(g.type === 'response' && g.serverNs === 2.5 && Buffer.from(g.payload).equals(big));
  const small = big.subarray(1);
  assert.equal(invokeFrame({ id: 5, mode: 'warm', variant: 'wasm', fn: 'noop', timeoutMs: 1, payload: small }).length, 1);
  assert.equal(responseFrame({ id: 6, status: 'ok', serverNs: 0, payload: small }).length, 1);
});

test('writeFrame over a real socket: large and small frames written back to back arrive whole and in order', async () => {
  const sizes = [1 << 20, 10, SEPARATE_PAYLOAD_BYTES, 0, 3 << 20, 5];
  const payloads = sizes.map((n, k) => Buffer.alloc(n).map((_, i) => (i * 13 + k) & 0xff));
  const got: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    const server = net.createServer((s) => {
      onFrames(s, (frames) => {
        for (const f of frames) {
          if (f instanceof Error || f.type !== 'response') return reject(f);
          got.push(Buffer.from(f.payload));
        }
        if (got.length === sizes.length) {
          s.destroy();
          server.close();
          resolve();
        }
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1', () => {
        payloads.forEach((payload, id) => writeFrame(c, responseFrame({ id, status: 'ok', serverNs: 0, payload })));
        c.end();
      });
    });
  });
  await done;
  assert.deepEqual(got.map((b) => b.length), sizes);
  got.forEach((b, k) => assert.ok(b.equals(payloads[k]!), `frame ${k}`));
});

test('a chain frame carries its stage count; its answer carries the timing of every stage before the output', () => {
  for (const payload of [Buffer.from('xy'), Buffer.alloc(SEPARATE_PAYLOAD_BYTES, 1)]) {
    const f = decodeFrame(new FrameReader().push(joinFrame(chainFrame({ id: 8, mode: 'warm', variant: 'wasm', fn: 'chainstep', timeoutMs: 70, stages: 5, payload })))[0]!);
    assert.ok(f.type === 'chain' && f.stages === 5 && f.fn === 'chainstep' && f.timeoutMs === 70 && Buffer.from(f.payload).equals(payload));
    const stages = [{ hopNs: 10.5, serverNs: 4 }, { hopNs: 20, serverNs: 6.25 }];
    const a = decodeFrame(new FrameReader().push(joinFrame(chainAnswerFrame(8, stages, payload)))[0]!);
    assert.ok(a.type === 'response' && a.status === 'ok' && a.serverNs === 10.25, 'serverNs is the sum of the stages');
    const parsed = parseChainAnswer(a.payload);
    assert.deepEqual(parsed.stages, stages);
    assert.ok(Buffer.from(parsed.output).equals(payload));
  }
  // an invoke frame's bytes with the type byte changed to chain: the stage count is missing
  const inv = encodeInvoke({ id: 9, mode: 'warm', variant: 'wasm', fn: 'noop', timeoutMs: 1, payload: Buffer.alloc(0) });
  inv.writeUInt8(5, 4);
  assert.throws(() => decodeFrame(new FrameReader().push(inv)[0]!), /frame 9: a chain frame without its stage count/);
  assert.throws(() => parseChainAnswer(Buffer.from([3, 0, 0])), /does not hold its stage timings/);
  assert.throws(() => chainAnswerFrame(1, [], Buffer.alloc(0)), /1 to 255 stages/);
});

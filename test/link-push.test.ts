// Pushed region pieces over a real TCP link, both ways (the connecting side reads with net's onread,
// the accepting side with 'data' events): pieces of a tag reach the sinks that expect them, in order,
// whether they arrive before or after they are expected (an early piece holds the link, nothing behind
// it is lost); a piece nobody expects is dropped after PUSH_HOLD_MS and the link goes on; a wrong
// length, a piece out of order, a push-failed, a timeout and an ended link each fail clearly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PUSH_HOLD_MS, RegionTable, connectLink, listenLinks, pushedSource, type Link } from '../harness/platform/link.js';
import { sinkInto } from '../harness/platform/frame-stream.js';

const MiB = 1 << 20;
const pattern = (n: number, salt: number) => Buffer.from(Uint8Array.from({ length: n }, (_, i) => (i * 7 + (i >> 12) + salt) & 0xff));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** a connected pair: `near` connected to `far`; each side has a region 'r' of its own bytes */
async function pair(fn: (near: Link, far: Link, nearBytes: Buffer, farBytes: Buffer) => Promise<void>): Promise<void> {
  const farBytes = pattern(2 * MiB, 1);
  const nearBytes = pattern(2 * MiB, 2);
  const farRegions = new RegionTable();
  farRegions.register('r', farBytes);
  const nearRegions = new RegionTable();
  nearRegions.register('r', nearBytes);
  let got!: (l: Link) => void;
  const accepted = new Promise<Link>((r) => (got = r));
  const listener = await listenLinks('tcp:127.0.0.1:0', (l) => got(l), { regions: farRegions });
  const near = await connectLink(listener.endpoint, { regions: nearRegions });
  const far = await accepted;
  try {
    await fn(near, far, nearBytes, farBytes);
  } finally {
    near.close();
    far.close();
    await listener.close();
  }
}

test('pushed pieces reach the sinks that expect them, in order, both ways; early pieces are held until expected, and a read behind them waits', { timeout: 30_000 }, async () => {
  await pair(async (near, far, nearBytes, farBytes) => {
    assert.ok(far.pushRegion && near.expectPush, 'TCP links push');
    // expected first, then pushed (far -> near: near reads into place)
    const a = new Uint8Array(4096);
    const b = new Uint8Array(MiB);
    const got = Promise.all([near.expectPush!(7, 0, a.length, sinkInto(a)), near.expectPush!(7, 1, b.length, sinkInto(b))]);
    far.pushRegion!(7, 0, 'r', 100, a.length);
    far.pushRegion!(7, 1, 'r', 5000, b.length);
    await got;
    assert.ok(Buffer.from(a).equals(farBytes.subarray(100, 100 + a.length)));
    assert.ok(Buffer.from(b).equals(farBytes.subarray(5000, 5000 + MiB)));
    // pushed first, expected later; a read asked for behind them is answered once they are taken
    far.pushRegion!(8, 0, 'r', 0, 4096);
    far.pushRegion!(8, 1, 'r', 4096, MiB);
    await sleep(150);
    let readDone = false;
    const read = near.readRegion('r', 10, 10).then((x) => ((readDone = true), x));
    await sleep(100);
    assert.equal(readDone, false, 'the link holds before the first unexpected piece');
    const c = new Uint8Array(4096);
    const d = new Uint8Array(MiB);
    await near.expectPush!(8, 0, c.length, sinkInto(c));
    await near.expectPush!(8, 1, d.length, sinkInto(d));
    assert.ok(Buffer.from(c).equals(farBytes.subarray(0, 4096)));
    assert.ok(Buffer.from(d).equals(farBytes.subarray(4096, 4096 + MiB)), 'held bytes are not lost');
    assert.ok(Buffer.from(await read).equals(farBytes.subarray(10, 20)));
    // near -> far: the accepting side takes pushes too (held, then expected)
    near.pushRegion!(9, 0, 'r', 77, MiB);
    await sleep(100);
    const e = new Uint8Array(MiB);
    await far.expectPush!(9, 0, e.length, sinkInto(e));
    assert.ok(Buffer.from(e).equals(nearBytes.subarray(77, 77 + MiB)));
  });
});

test(`a piece nobody expects is dropped after ${PUSH_HOLD_MS} ms, and what follows it on the link is read`, { timeout: 30_000 }, async () => {
  await pair(async (near, far, _nb, farBytes) => {
    far.pushRegion!(11, 0, 'r', 0, MiB);
    await sleep(50);
    const t0 = Date.now();
    const x = await near.readRegion('r', 3, 5);
    assert.ok(Date.now() - t0 >= PUSH_HOLD_MS - 200, `the read waited for the hold to end (${Date.now() - t0} ms)`);
    assert.ok(Buffer.from(x).equals(farBytes.subarray(3, 8)));
    // the tag was given up: expecting it now fails at once, naming why
    await assert.rejects(near.expectPush!(11, 0, MiB, sinkInto(new Uint8Array(MiB))), /pushed piece of tag 11 .* was not expected within \d+ ms: dropped/);
    // and a later piece of that tag is read and dropped, not held
    far.pushRegion!(11, 1, 'r', 0, 4096);
    const t1 = Date.now();
    await near.readRegion('r', 0, 1);
    assert.ok(Date.now() - t1 < 1000);
  });
});

test('a wrong length, a piece out of order, push-failed and an ended link fail the expected pieces clearly; the link goes on after each but the last', { timeout: 30_000 }, async () => {
  await pair(async (near, far, _nb, farBytes) => {
    const small = new Uint8Array(100);
    const wrong = near.expectPush!(1, 0, small.length, sinkInto(small));
    far.pushRegion!(1, 0, 'r', 0, 4096);
    await assert.rejects(wrong, /pushed 4096 bytes as piece 0 of tag 1, expected 100/);
    const second = near.expectPush!(2, 0, 4096, sinkInto(new Uint8Array(4096)));
    far.pushRegion!(2, 1, 'r', 0, 4096);
    await assert.rejects(second, /pushed piece 1 of tag 2 where piece 0 was due/);
    const refused = near.expectPush!(3, 0, 4096, sinkInto(new Uint8Array(4096)));
    far.pushFailed!(3, 'no such snapshot here');
    await assert.rejects(refused, /will not push tag 3: no such snapshot here/);
    await assert.rejects(near.expectPush!(3, 1, 4096, sinkInto(new Uint8Array(4096))), /will not push tag 3/);
    assert.throws(() => far.pushRegion!(4, 0, 'nope', 0, 1), /no region "nope"/);
    assert.ok(Buffer.from(await near.readRegion('r', 0, 16)).equals(farBytes.subarray(0, 16)), 'the link goes on');
    const orphan = near.expectPush!(5, 0, 4096, sinkInto(new Uint8Array(4096)));
    far.close();
    await assert.rejects(orphan, /ended before piece 0 of pushed tag 5/);
  });
});

test('pushedSource: its first pieces are the pushed ones, later reads are reads; one not pushed in time fails naming it; close() drops what is still to come', { timeout: 30_000 }, async () => {
  await pair(async (near, far, _nb, farBytes) => {
    const src = pushedSource(near, 21, 1, 500);
    const a = new Uint8Array(4096);
    const b = new Uint8Array(4096);
    far.pushRegion!(21, 0, 'r', 0, 4096);
    await src.stream('r', 0, 4096, sinkInto(a));
    await src.stream('r', 8192, 4096, sinkInto(b)); // beyond the pushed pieces: read from far
    assert.ok(Buffer.from(a).equals(farBytes.subarray(0, 4096)));
    assert.ok(Buffer.from(b).equals(farBytes.subarray(8192, 12288)));
    src.close();
    const late = pushedSource(near, 22, 2, 300);
    await assert.rejects(late.stream('r', 0, 4096, sinkInto(new Uint8Array(4096))), /piece 0 of tag 22 \(\[0, 4096\) of region "r"\) was not pushed by .* within 300 ms/);
    late.close();
    // pieces of a closed source arrive later: dropped at once, the link is not held
    far.pushRegion!(22, 0, 'r', 0, MiB);
    const t0 = Date.now();
    await near.readRegion('r', 0, 1);
    assert.ok(Date.now() - t0 < 1000, `not held (${Date.now() - t0} ms)`);
  });
});

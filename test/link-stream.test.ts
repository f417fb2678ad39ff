// Streamed region reads over a real TCP link (the connecting side reads with net's onread, into its
// staging buffer or straight into the room a sink offers): the bytes arrive whole and in order, the
// sink ends before the read resolves, plain and streamed reads mix, and a sink that fails, a refusal
// or a link that ends (even in the middle of a streamed answer) fails only the reads concerned.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { onFrames } from '../harness/platform/frame-stream.js';
import { regionDataFrame } from '../harness/platform/agent-frames.js';
import { RegionTable, connectLink, listenLinks, regionStream, type Link } from '../harness/platform/link.js';
import type { PayloadSink } from '../harness/platform/frame-stream.js';

const MiB = 1 << 20;
const pattern = (n: number) => Buffer.from(Uint8Array.from({ length: n }, (_, i) => (i * 7 + (i >> 12)) & 0xff));

async function withLink(fn: (link: Link, whole: Buffer, regions: RegionTable) => Promise<void>): Promise<void> {
  const whole = pattern(2 * MiB);
  const regions = new RegionTable();
  regions.register('r', whole);
  const served: Link[] = [];
  const listener = await listenLinks('tcp:127.0.0.1:0', (l) => served.push(l), { regions });
  const link = await connectLink(listener.endpoint);
  try {
    await fn(link, whole, regions);
  } finally {
    link.close();
    for (const l of served) l.close();
    await listener.close();
  }
}

/** a sink filling `into`, with room in pieces of at most `roomMax` bytes (0: no room), counting what came each way */
function filling(into: Uint8Array, roomMax: number) {
  const s = { copied: 0, placed: 0, ends: 0 };
  const sink: PayloadSink = {
    data(b, at) {
      into.set(b, at);
      s.copied += b.length;
    },
    end: () => s.ends++,
    ...(roomMax ? { room: (at: number, max: number) => into.subarray(at, at + Math.min(max, roomMax)), placed: (_at: number, n: number) => void (s.placed += n) } : {}),
  };
  return { sink, s };
}

test('streamed reads over TCP: bytes land in place or through the staging buffer, whole; the sink ends before the read resolves', { timeout: 30_000 }, async () => {
  await withLink(async (link, whole) => {
    assert.ok(link.readRegionStream, 'a TCP link streams');
    for (const roomMax of [0, 4096, 256 << 10]) {
      const into = new Uint8Array(MiB);
      const { sink, s } = filling(into, roomMax);
      let endedFirst = false;
      await link.readRegionStream!('r', 12_345, MiB, { ...sink, end: () => ((endedFirst = true), sink.end()) });
      assert.ok(endedFirst);
      assert.ok(Buffer.from(into).equals(whole.subarray(12_345, 12_345 + MiB)), `room ${roomMax}`);
      assert.equal(s.copied + s.placed, MiB);
      assert.equal(s.ends, 1);
      if (roomMax) assert.ok(s.placed > MiB / 2, `most bytes read into place (room ${roomMax}): ${s.placed} of ${MiB}`);
      else assert.equal(s.placed, 0);
    }
    // an empty read ends at once
    const { sink, s } = filling(new Uint8Array(0), 4096);
    await link.readRegionStream!('r', 0, 0, sink);
    assert.equal(s.ends, 1);
  });
});

test('streamed and plain reads in flight together each get their own bytes', { timeout: 30_000 }, async () => {
  await withLink(async (link, whole) => {
    const offsets = Array.from({ length: 12 }, (_, i) => i * 150_001);
    const len = 300_000;
    const targets = offsets.map(() => new Uint8Array(len));
    const reads = offsets.map((o, i) => (i % 3 === 0 ? link.readRegion('r', o, len).then((b) => targets[i]!.set(b)) : regionStream(link, 'r', o, len, filling(targets[i]!, i % 3 === 1 ? 8192 : 0).sink)));
    await Promise.all(reads);
    offsets.forEach((o, i) => assert.ok(Buffer.from(targets[i]!).equals(whole.subarray(o, o + len)), `read ${i}`));
  });
});

test('a sink that throws fails its read with its own error, the rest of its bytes are dropped, and the link goes on', { timeout: 30_000 }, async () => {
  await withLink(async (link, whole) => {
    for (const roomMax of [0, 4096]) {
      const into = new Uint8Array(MiB);
      const { sink } = filling(into, roomMax);
      let calls = 0;
      const third = () => {
        if (++calls === 3) throw new Error('page 2 is corrupt');
      };
      const failing: PayloadSink = {
        ...sink,
        data(b, at) {
          third();
          sink.data(b, at);
        },
        ...(roomMax ? { placed: (at: number, n: number) => (third(), sink.placed!(at, n)) } : {}),
      };
      const later = link.readRegion('r', 5, 100);
      await assert.rejects(link.readRegionStream!('r', 0, MiB, failing), /page 2 is corrupt/);
      assert.ok(Buffer.from(await later).equals(whole.subarray(5, 105)), 'a read behind the failed one');
      const again = new Uint8Array(1000);
      await link.readRegionStream!('r', 77, 1000, filling(again, roomMax).sink);
      assert.ok(Buffer.from(again).equals(whole.subarray(77, 1077)));
    }
  });
});

test('refusals and an ended link fail streamed reads clearly', { timeout: 30_000 }, async () => {
  await withLink(async (link, _whole, regions) => {
    const { sink, s } = filling(new Uint8Array(10), 4096);
    await assert.rejects(link.readRegionStream!('nope', 0, 10, sink), /refused a read of \[0, 10\) of region "nope": no region "nope" is registered here/);
    await assert.rejects(link.readRegionStream!('r', 2 * MiB - 5, 10, sink), /outside region "r"/);
    assert.equal(s.ends, 0, 'a refused read never ends its sink');
    // once the owner unregisters the region, reads of it are refused
    regions.unregister('r');
    await assert.rejects(link.readRegionStream!('r', 0, 10, sink), /no region "r"/);
    const pending = link.readRegionStream!('gone', 0, 10, sink);
    link.close();
    await assert.rejects(pending, /the link to tcp:127\.0\.0\.1:\d+ (ended|is closed)|refused/);
  });
});

test('a link that ends in the middle of a streamed answer fails that read, naming it', { timeout: 30_000 }, async () => {
  // a peer that answers the first region read with half of its bytes, then goes away
  const server = net.createServer((s) => {
    onFrames(s, (frames) => {
      for (const f of frames) {
        if (f instanceof Error || f.type !== 'region-read') continue;
        const [head, body] = regionDataFrame(f.id, true, Buffer.alloc(f.length, 1));
        s.write(head);
        s.write(body!.subarray(0, f.length >> 1), () => s.destroy());
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const link = await connectLink(`tcp:127.0.0.1:${(server.address() as net.AddressInfo).port}`);
  try {
    const into = new Uint8Array(MiB);
    const { sink, s } = filling(into, 64 << 10);
    await assert.rejects(link.readRegionStream!('r', 0, MiB, sink), /the link to tcp:127\.0\.0\.1:\d+ ended during a read of \[0, 1048576\) of region "r"/);
    assert.ok(s.copied + s.placed > 0 && s.copied + s.placed < MiB, 'part of it had arrived');
    assert.equal(s.ends, 0, 'its sink was not ended');
  } finally {
    link.close();
    await new Promise((r) => server.close(r));
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { benchInProcess } from '../harness/measure/bench.js';
import { progress } from '../harness/measure/progress.js';
import { elapsedNs, now } from '../harness/measure/timing.js';

function busy(ns: number): number {
  const end = now() + ns;
  let x = 0;
  while (now() < end) x++;
  return x;
}

test('timing: monotonic ns', () => {
  const t = now();
  busy(200_000);
  const e = elapsedNs(t);
  assert.ok(e >= 200_000 && e < 50_000_000, `elapsed ${e}`);
  assert.ok(Number.isInteger(t));
});

test('benchInProcess: ns samples, exact counts, every result verified', async () => {
  let calls = 0;
  const r = await benchInProcess({
    name: 'busy-sync',
    fn: () => {
      calls++;
      busy(100_000);
      return calls;
    },
    verify: (v) => assert.equal(typeof v, 'number'),
    warmup: 3,
    iterations: 20,
  });
  assert.equal(r.samplesNs.length, 20);
  assert.equal(calls, 1 + 3 + 20); // async probe + warmup + run
  assert.equal(r.verified, 24);
  assert.ok(r.samplesNs.every((s) => s >= 100_000 && s < 50_000_000), `ns samples: ${r.samplesNs.slice(0, 3)}`);
  assert.equal(r.tinybench.samplesCount, 20);
  const sortedMs = [...r.samplesNs].sort((a, b) => a - b).map((ns) => ns / 1e6);
  const mid = (sortedMs[9]! + sortedMs[10]!) / 2;
  assert.ok(Math.abs(r.tinybench.p50 - mid) < 1e-9, 'tinybench statistics use the same samples');
});

test('benchInProcess: async fn, and verification is outside the timed region', async () => {
  const r = await benchInProcess({
    name: 'async',
    fn: async () => {
      await new Promise((res) => setImmediate(res));
      return 'ok';
    },
    verify: (v) => {
      assert.equal(v, 'ok');
      busy(3_000_000); // a slow check must not show up in the samples
    },
    warmup: 1,
    iterations: 10,
    async: true,
  });
  assert.equal(r.samplesNs.length, 10);
  assert.equal(r.verified, 11);
  const sorted = [...r.samplesNs].sort((a, b) => a - b);
  assert.ok(sorted[5]! < 2_000_000, `median ${sorted[5]} ns excludes the 3 ms verification`);
});

test('benchInProcess: one bad result rejects the whole benchmark', async () => {
  let i = 0;
  await assert.rejects(
    benchInProcess({
      name: 'bad',
      fn: () => ++i,
      verify: (v) => {
        if (v === 15) throw new Error(`wrong output at call ${v}`);
      },
      warmup: 2,
      iterations: 50,
    }),
    /bad.*verification failed: wrong output at call 15/,
  );
  await assert.rejects(
    benchInProcess({ name: 'throws', fn: () => { throw new Error('boom'); }, verify: () => {}, warmup: 0, iterations: 5, async: false }),
    /boom/,
  );
});

function sink(isTTY: boolean): { stream: Writable & { isTTY?: boolean; columns?: number }; text: () => string } {
  let buf = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      buf += chunk.toString();
      cb();
    },
  }) as Writable & { isTTY?: boolean; columns?: number };
  stream.isTTY = isTTY;
  stream.columns = 80;
  return { stream, text: () => buf };
}

test('progress: plain lines are rate-limited, with start and end', () => {
  const s = sink(false);
  let t = 0;
  const p = progress({ label: 'cold', total: 10, stream: s.stream, clock: () => t });
  for (let i = 0; i < 10; i++) {
    t += 1000;
    p.tick();
  }
  p.note('runc skipped');
  p.done();
  p.done();
  const lines = s.text().trim().split('\n');
  assert.deepEqual(lines, [
    'cold: start, 10 to do',
    'cold: 5/10 (50%) elapsed 5s eta 5s',
    'cold: 10/10 (100%) elapsed 10s eta 0s',
    'cold: runc skipped',
    'cold: done, 10/10 (100%) elapsed 10s eta 0s',
  ]);
});

test('progress: a TTY gets one redrawn line', () => {
  const s = sink(true);
  let t = 0;
  const p = progress({ label: 'warm', total: 4, stream: s.stream, clock: () => t, plain: false });
  for (let i = 0; i < 4; i++) {
    t += 500;
    p.tick();
  }
  p.done();
  const out = s.text();
  assert.ok(out.includes('\r\x1b[2Kwarm ['));
  assert.ok(out.includes('4/4 (100%)'));
  assert.equal(out.split('\n').length, 2, 'only the final newline');
});

test('list flags: comma-separated positive integers, the default when absent, a clear error otherwise', async () => {
  const { positiveInts } = await import('../harness/experiment/args.js');
  assert.deepEqual(positiveInts({ extra: {} }, 'sizes', [64]), [64]);
  assert.deepEqual(positiveInts({ extra: { sizes: '64,1024' } }, 'sizes', [1]), [64, 1024]);
  assert.throws(() => positiveInts({ extra: { sizes: '64,0' } }, 'sizes', [1]), /--sizes wants positive integers, got "64,0"/);
  assert.throws(() => positiveInts({ extra: { lengths: '2,x' } }, 'lengths', [1]), /--lengths wants positive integers/);
  const { positiveIntFlag } = await import('../harness/experiment/args.js');
  assert.equal(positiveIntFlag({ extra: {} }, 'duration-ms', 5000), 5000);
  assert.equal(positiveIntFlag({ extra: { 'duration-ms': '250' } }, 'duration-ms', 5000), 250);
  assert.throws(() => positiveIntFlag({ extra: { 'budget-mib': 'abc' } }, 'budget-mib', 1024), /--budget-mib wants a positive integer, got "abc"/);
  assert.throws(() => positiveIntFlag({ extra: { instances: '0' } }, 'instances', 16), /--instances wants a positive integer/);
});

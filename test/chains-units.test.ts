// Pieces of the chains experiment that need no processes: the wire format's message splitting (any
// chunking, 1 MiB bodies), the stamp slots, and the figures drawn from summary rows — including the
// split into time inside the functions and overhead, with the share label, and failed cells listed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HEADER_BYTES, KIND_COPY, KIND_DESC, KIND_ERROR, MAX_PAYLOAD, MessageReader, STAMP_SLOT, encodeHeader, readStamp, writeStamp } from '../harness/chains/wire.js';
import { chainsFigures, chainsOverheadFigure } from '../harness/figures/chains.js';
import { figureToSvg, renderFigure } from '../harness/figures/render.js';
import { summarize } from '../harness/results/summarize.js';
import type { RawRow } from '../harness/results/schema.js';
import type { Failure } from '../harness/results/summarize.js';
import { createRng } from '../harness/measure/random.js';

const msg = (kind: number, seq: number, body: Buffer) => Buffer.concat([encodeHeader({ kind, stage: 2, length: 3, seq, offset: kind === KIND_DESC ? 4096 : 0, bytes: body.length }), kind === KIND_DESC ? Buffer.alloc(0) : body]);

test('MessageReader: the same messages whatever the chunking, 1 MiB bodies included', () => {
  const big = Buffer.alloc(1 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  const stream = Buffer.concat([msg(KIND_COPY, 1, Buffer.from('hello')), msg(KIND_DESC, 2, Buffer.alloc(1 << 20)), msg(KIND_COPY, 3, big), msg(KIND_ERROR, 4, Buffer.from('stage 2: boom'))]);
  const rng = createRng(3);
  for (const sizes of [[stream.length], [1], [HEADER_BYTES - 1], [65536], [1000, 7, 65536, 3]]) {
    const reader = new MessageReader();
    const got: { seq: number; kind: number; body: Buffer | null; bytes: number }[] = [];
    for (let o = 0, i = 0; o < stream.length; i++) {
      const n = sizes.length > 1 && i >= sizes.length ? 1 + Math.floor(rng() * 70000) : sizes[i % sizes.length]!;
      for (const m of reader.push(stream.subarray(o, o + n))) got.push({ seq: m.h.seq, kind: m.h.kind, body: m.body, bytes: m.h.bytes });
      o += n;
    }
    assert.deepEqual(got.map((m) => [m.seq, m.kind, m.bytes]), [[1, KIND_COPY, 5], [2, KIND_DESC, 1 << 20], [3, KIND_COPY, 1 << 20], [4, KIND_ERROR, 13]], `chunks ${sizes}`);
    assert.equal(got[0]!.body!.toString(), 'hello');
    assert.equal(got[1]!.body, null, 'a descriptor carries no body');
    assert.ok(got[2]!.body!.equals(big), `1 MiB body intact (chunks ${sizes})`);
    assert.equal(got[3]!.body!.toString(), 'stage 2: boom');
  }
});

test('MessageReader refuses a bad kind and an inline body over the limit', () => {
  const bad = encodeHeader({ kind: 9, stage: 1, length: 1, seq: 1, offset: 0, bytes: 0 });
  assert.throws(() => new MessageReader().push(bad), /bad message kind 9/);
  const huge = encodeHeader({ kind: KIND_COPY, stage: 1, length: 1, seq: 1, offset: 0, bytes: MAX_PAYLOAD + 1 });
  assert.throws(() => new MessageReader().push(huge), /exceeds/);
  // a descriptor may name any length: its bytes are in the shared file, not on the socket
  assert.equal(new MessageReader().push(encodeHeader({ kind: KIND_DESC, stage: 1, length: 1, seq: 1, offset: 0, bytes: MAX_PAYLOAD + 1 })).length, 1);
});

test('stamp slots: what a stage writes is what the client reads, in its own slot', () => {
  const file = Buffer.alloc(STAMP_SLOT * 17);
  const w = (_fd: number, b: Buffer, off: number, len: number, pos: number) => b.copy(file, pos, off, off + len);
  writeStamp(0, 3, { recvNs: 1e13 + 1, computeNs: 1234, sendNs: 1e13 + 5000, seq: 0xfffffffe }, w);
  writeStamp(0, 4, { recvNs: 2, computeNs: 1, sendNs: 3, seq: 7 }, w);
  assert.deepEqual(readStamp(file, 3), { recvNs: 1e13 + 1, computeNs: 1234, sendNs: 1e13 + 5000, seq: 0xfffffffe });
  assert.deepEqual(readStamp(file, 4), { recvNs: 2, computeNs: 1, sendNs: 3, seq: 7 });
  assert.deepEqual(readStamp(file, 2), { recvNs: 0, computeNs: 0, sendNs: 0, seq: 0 });
});

function synthetic(): ReturnType<typeof summarize> {
  const rng = createRng(11);
  const raw: RawRow[] = [];
  const ways: [string, number, number][] = [['wasm+gateway', 40, 1], ['wasm+sockmap', 12, 1.5], ['wasm+sockmap+shm', 14, 1.5], ['container+gateway', 150, 50]];
  for (const [way, hop, fn] of ways) {
    for (const n of [1, 2, 4, 8]) {
      for (const size of [64, 1 << 20]) {
        const params = `length=${n};payload=${size};cpus=1;client_cpus=1`;
        for (let i = 0; i < 20; i++) {
          const compute = n * fn * (size > 64 ? 300 : 1) * (1 + 0.05 * rng());
          const overhead = n * hop * (size > 64 ? 50 : 1) * (1 + 0.05 * rng());
          const base = { experiment: 'chains', variant: way, function: 'chainstep', mode: 'warm', path: 'chain', iteration: i, unit: 'us' };
          raw.push({ ...base, metric: 'e2e', params, value: compute + overhead });
          raw.push({ ...base, metric: 'compute', params, value: compute });
          raw.push({ ...base, metric: 'overhead', params, value: overhead });
          raw.push({ ...base, metric: 'overhead_share', params, value: (100 * overhead) / (compute + overhead), unit: '%' });
          raw.push({ ...base, metric: 'cpu_per_request', params, value: (compute + overhead) * 1.2 });
        }
      }
    }
  }
  const failures: Failure[] = [{ experiment: 'chains', variant: 'wasm+sockmap+shm', function: 'chainstep', mode: 'warm', path: 'chain', params: 'length=8;payload=64;cpus=1;client_cpus=1', reason: 'chain node of stage 2 (pid 4242) killed by SIGKILL; the chain is broken' }];
  return summarize(raw, [], failures);
}

test('chains figures: e2e, overhead (compute and e2e − compute, share at the longest chain) and CPU render; a failed cell is listed with its reason', () => {
  const rows = synthetic();
  const figs = chainsFigures(rows);
  assert.deepEqual(figs.map((f) => f.name), ['chains-e2e', 'chains-overhead', 'chains-cpu']);
  const svg = figureToSvg(chainsOverheadFigure(rows));
  assert.match(svg, /Σ stage compute/);
  assert.match(svg, /e2e − Σ compute/);
  // gateway at 64 B: overhead 40/(40+1) of e2e → about 98 % at every N; labelled once, at N = 8
  const share = rows.find((r) => r.variant === 'wasm+gateway' && r.metric === 'overhead_share' && r.params.startsWith('length=8;payload=64;'))!;
  assert.equal(svg.split(`>${share.p50.toFixed(0)}% at N=8<`).length - 1 >= 1, true, `share label ${share.p50.toFixed(0)}% in the SVG`);
  const labels = [...svg.matchAll(/>(\d+)% at N=\d+</g)].length;
  assert.equal(labels, 4 * 2, 'one share label per way and payload (at the longest chain)');
  assert.match(svg, /killed by SIGKILL/, 'the failed cell is listed under the figure');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chains-fig-test-'));
  try {
    for (const f of figs) {
      const out = renderFigure(f, dir);
      assert.ok(fs.statSync(out.png).size > 1000, `${f.name}.png`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  // no rows: still renders and says so
  assert.match(figureToSvg(chainsOverheadFigure([])), /No measured cells/);
});

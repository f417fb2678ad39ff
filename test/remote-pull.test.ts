// The child's pull of a remote fork, in-process (regions read from a RegionTable; test/remote-fork.test.ts
// runs the same code between agents in namespaces): a header the child decoded is reused only for the
// same bytes; prefetch asks for the descriptor's working set with the header, and a descriptor whose
// working-set ranges are not whole pages is refused before a page byte is written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadCatalog } from '../harness/functions/catalog.js';
import { RegionTable } from '../harness/platform/link.js';
import type { PayloadSink } from '../harness/platform/frame-stream.js';
import { WasmRemoteFork } from '../harness/variants/wasm/remote-fork.js';
import { prepareImage } from '../harness/variants/wasm/snapshot.js';
import { statefillAnswer } from '../harness/functions/workloads/statefill.js';

const maxPages = 64;
test('a child keeps the last header it decoded: a byte-identical one is reused, any changed byte is decoded and refused anew', async () => {
  const fn = (await loadCatalog()).get('counter');
  const img = prepareImage({ name: fn.name, path: fn.wasm!.path, abi: fn.wasm!.abi }, maxPages);
  const regions = new RegionTable();
  const r = new WasmRemoteFork('wasm-fork', maxPages);
  const d = await r.snapshotRegister(img, new Uint8Array(0), 3, regions);
  let bytes = Buffer.from(regions.slice(d.region, 0, d.totalBytes) as Uint8Array);
  const src = {
    read: async (id: string, o: number, len: number) => (id === d.region ? bytes.subarray(o, o + len) : (regions.slice(id, o, len) as Uint8Array)),
    stream: async (id: string, o: number, len: number, sink: PayloadSink) => {
      sink.data(await src.read(id, o, len), 0);
      sink.end();
    },
  };
  const fork = async () => Buffer.from((await r.forkFrom(img, { peer: 'here', snapshot: d, copy: 'dirty', input: new Uint8Array(0) }, src)).output).toString();
  const headers = (r as unknown as { headers: { last: { header: unknown } | null } }).headers;
  assert.equal(await fork(), '4\n');
  const first = headers.last!.header;
  assert.equal(await fork(), '4\n');
  assert.equal(headers.last!.header, first, 'the second fork reused the decoded header');
  // the parent's header changes under the same descriptor: decoded again, and its checksum refuses it
  bytes = Buffer.from(bytes);
  bytes[d.headerBytes - 40]! ^= 1;
  await assert.rejects(fork(), /header checksum \(sha256\) mismatch/);
  assert.equal(headers.last!.header, first, 'a refused header is not kept');
  r.teardown(regions);
});

test('prefetch asks for the descriptor\'s working set together with the header; ranges that are not whole pages are refused', async () => {
  const fn = (await loadCatalog()).get('statefill');
  const img = prepareImage({ name: fn.name, path: fn.wasm!.path, abi: fn.wasm!.abi }, maxPages);
  const regions = new RegionTable();
  const r = new WasmRemoteFork('wasm-fork', maxPages);
  const input = Buffer.from('1');
  const d = await r.snapshotRegister(img, input, 1, regions);
  assert.ok(d.workingSetRanges?.length, 'the descriptor names the working set');
  let headerDone = false;
  const asked: { o: number; n: number; afterHeader: boolean }[] = [];
  const src = {
    read: async (id: string, o: number, len: number) => regions.slice(id, o, len) as Uint8Array,
    stream: async (id: string, o: number, len: number, sink: PayloadSink) => {
      asked.push({ o, n: len, afterHeader: headerDone });
      const b = regions.slice(id, o, len);
      if (typeof b === 'string') throw new Error(b);
      await new Promise((res) => setImmediate(res));
      sink.data(b, 0);
      sink.end();
      if (o === 0) headerDone = true;
    },
  };
  const res = await r.forkFrom(img, { peer: 'here', snapshot: d, copy: 'prefetch', input }, src);
  assert.equal(Buffer.from(res.output).toString(), statefillAnswer(1, 2));
  const wsBytes = d.workingSetRanges!.reduce((a, [x, y]) => a + y - x, 0);
  assert.equal(res.bytesBeforeResponse, d.headerBytes + wsBytes);
  const before = asked.filter((a) => !a.afterHeader);
  assert.equal(before.reduce((a, x) => a + x.n, 0), d.headerBytes + wsBytes, 'the header and the whole working set were asked for before the header arrived');
  // a descriptor whose working set does not fall on page boundaries
  const bad = { ...d, workingSetRanges: [[d.headerBytes + 100, d.headerBytes + 4196]] as [number, number][] };
  await assert.rejects(r.forkFrom(img, { peer: 'here', snapshot: bad, copy: 'prefetch', input }, src), /the descriptor's working set range \[\d+, \d+\) is not whole pages of the snapshot/);
  r.teardown(regions);
});

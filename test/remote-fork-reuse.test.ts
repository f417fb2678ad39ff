// The child of a remote fork is made fresh again as the next fork's target when it can be (its memory did
// not grow, its tables are the module's): its memory is then exactly the initial image, and the next
// children answer as before. A child whose memory grew is not reused. (In-process: the regions are read
// from a RegionTable here; test/remote-fork.test.ts runs the same code between agents in namespaces.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadCatalog } from '../harness/functions/catalog.js';
import { RegionTable } from '../harness/platform/link.js';
import type { PayloadSink } from '../harness/platform/frame-stream.js';
import type { Live } from '../harness/variants/wasm/engine.js';
import { WasmRemoteFork } from '../harness/variants/wasm/remote-fork.js';
import { prepareImage } from '../harness/variants/wasm/snapshot.js';
import { expectedDigest, sha256Hex } from '../harness/functions/verify.js';

const maxPages = 64;
const tick = () => new Promise<void>((r) => setImmediate(r));

async function forks(name: string, input: Uint8Array, n: number) {
  const fn = (await loadCatalog()).get(name);
  const img = prepareImage({ name: fn.name, path: fn.wasm!.path, abi: fn.wasm!.abi }, maxPages);
  const regions = new RegionTable();
  const r = new WasmRemoteFork('wasm-fork', maxPages);
  const d = await r.snapshotRegister(img, input, 1, regions);
  const read = async (id: string, o: number, len: number) => regions.slice(id, o, len) as Uint8Array;
  const src = {
    read,
    stream: async (id: string, o: number, len: number, sink: PayloadSink) => {
      sink.data(await read(id, o, len), 0);
      sink.end();
    },
  };
  const outputs: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    outputs.push((await r.forkFrom(img, { peer: 'here', snapshot: d, copy: 'dirty', input }, src)).output);
    await tick(); // the refill runs after the answer
    await tick();
  }
  const pooled = [...(r as unknown as { pools: Map<string, Live> }).pools.values()];
  r.teardown(regions);
  return { img, fn, outputs, reused: r.reused, pooled };
}

test('a child that did not grow is reused: its memory is the initial image again, and the next children answer alike', async () => {
  const input = Buffer.from('{"k":[1,2,3],"s":"x"}');
  const { img, fn, outputs, reused, pooled } = await forks('json', input, 5);
  for (const o of outputs) assert.equal(sha256Hex(o), expectedDigest(fn, input));
  assert.equal(reused, 5);
  assert.equal(pooled.length, 1);
  const mem = Buffer.from(pooled[0]!.memory.buffer);
  assert.ok(mem.subarray(0, img.initial.length).equals(Buffer.from(img.initial)), 'the initial image');
  assert.ok(mem.subarray(img.initial.length).every((b) => b === 0), 'zeroes past it');
});

test('counter: every child answers the parent\'s next count, reused or not', async () => {
  const { outputs, reused } = await forks('counter', new Uint8Array(0), 4);
  assert.deepEqual(outputs.map((o) => Buffer.from(o).toString()), ['2\n', '2\n', '2\n', '2\n']);
  assert.equal(reused, 4);
});

test('statefill grows its memory in the call: its children are not reused', async () => {
  const { outputs, reused } = await forks('statefill', Buffer.from('1'), 3);
  for (const o of outputs) assert.match(Buffer.from(o).toString(), /^mib=1 calls=2 sum=[0-9a-f]{8}\n?$/);
  assert.equal(reused, 0);
});

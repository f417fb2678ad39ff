// The node agent, as a real process on this machine: hello, put-module, invoke by hash, restart,
// region reads over TCP, version mismatch, and an agent that dies in the middle of a read.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { after, before, test } from 'node:test';
import { loadCatalog, type Catalog } from '../harness/functions/catalog.js';
import { AgentClient } from '../harness/platform/agent-client.js';
import { PROTOCOL_VERSION } from '../harness/platform/agent-frames.js';
import { launchNode } from '../harness/platform/nodes/inventory.js';
import type { LaunchedNode } from '../harness/platform/nodes/kind.js';
import { sha256Hex } from '../harness/platform/module-store.js';
import { MAX_REGION_READ } from '../harness/platform/link.js';
import { cleanupStaleScratch } from '../harness/platform/scratch.js';
import { pidAlive } from '../harness/platform/proc-memory.js';
import { correct, waitFor } from './helpers.js';

let catalog: Catalog;
let node: LaunchedNode;
let client: AgentClient;

before(async () => {
  catalog = await loadCatalog();
  // TCP, so that region reads go over the transport the remote nodes use
  node = await launchNode({ name: 'agent-test', kind: 'local' }, { variants: ['wasm', 'native'], memoryLimitMiB: 64, listen: 'tcp:127.0.0.1:0' });
  client = await AgentClient.connect(node.endpoint);
});

after(async () => {
  client?.close();
  await node?.stop();
});

const warm = { mode: 'warm' as const, timeoutMs: 5000 };

test('hello: the agent names its protocol version and capabilities (variants, modes, transports, memory)', async () => {
  const info = await client.hello();
  assert.equal(info.version, PROTOCOL_VERSION);
  assert.equal(info.node, 'agent-test');
  assert.equal(info.pid, node.child.pid);
  assert.deepEqual(info.variants.map((v) => v.name), ['wasm', 'native']);
  const wasm = info.variants.find((v) => v.name === 'wasm')!;
  assert.ok(wasm.modes.includes('warm') && wasm.modes.includes('cold'), String(wasm.modes));
  assert.deepEqual(wasm.capability, { ok: true });
  assert.ok(info.transports.includes('tcp') && info.transports.includes('unix'), String(info.transports));
  assert.ok(info.memory.totalBytes > 0 && info.memory.perInstanceMiB === 64);
});

test('hello with another protocol version is refused, naming both versions', async () => {
  const other = await AgentClient.connect(node.endpoint);
  try {
    await assert.rejects(other.hello(PROTOCOL_VERSION + 97), new RegExp(`version ${PROTOCOL_VERSION + 97}.*version ${PROTOCOL_VERSION}`));
    await other.ping(); // the connection stays usable
  } finally {
    other.close();
  }
});

test('put-module: a wasm module and a native binary shipped by hash run under their hash name, outputs verified', async () => {
  const fn = catalog.get('fnv1a');
  const input = fn.workload.input(7, 'small');
  const wasmName = await client.putModule('wasm-reactor', fs.readFileSync(fn.wasm!.path));
  assert.equal(wasmName, `sha256:${sha256Hex(fs.readFileSync(fn.wasm!.path))}`);
  const r = await client.invoke({ variant: 'wasm', fn: wasmName, input, ...warm });
  assert.equal(r.status, 'ok', Buffer.from(r.output).toString());
  correct(fn, input, r.output);
  const nativeName = await client.putModule('native', fs.readFileSync(fn.native!));
  const n = await client.invoke({ variant: 'native', fn: nativeName, input, mode: 'cold', timeoutMs: 5000 });
  assert.equal(n.status, 'ok', Buffer.from(n.output).toString());
  correct(fn, input, n.output);
  // sending it again is harmless
  assert.equal(await client.putModule('wasm-reactor', fs.readFileSync(fn.wasm!.path)), wasmName);
});

test('an unknown hash is refused, asking for put-module; bytes that do not match their hash are refused', async () => {
  const r = await client.invoke({ variant: 'wasm', fn: `sha256:${'ab'.repeat(32)}`, input: Buffer.alloc(0), ...warm });
  assert.equal(r.status, 'bad-request');
  assert.match(Buffer.from(r.output).toString(), /not on this node: send its bytes with put-module first/);
  await assert.rejects(client.putModule('wasm-reactor', Buffer.from('not the module'), 'cd'.repeat(32)), /hash to sha256 [0-9a-f]{64}, not the cdcd/);
  const s = await client.invoke({ variant: 'container', fn: 'noop', input: Buffer.alloc(0), ...warm });
  assert.equal(s.status, 'bad-request');
  assert.match(Buffer.from(s.output).toString(), /serves "wasm", "native", not "container"/);
});

test('restart: the variant starts afresh (the counter fixture counts from 1 again); an unknown variant is refused', async () => {
  const fn = catalog.get('counter');
  const call = { variant: 'wasm', fn: 'counter', input: fn.workload.input(1, 'small'), ...warm };
  const count = async () => Buffer.from((await client.invoke(call)).output).toString().trim();
  await count();
  const before = Number(await count());
  assert.ok(before >= 2, `a warm instance counts its calls: ${before}`);
  await client.restart('wasm');
  assert.equal(await count(), '1');
  assert.equal((await client.hello()).pid, node.child.pid, 'the same process: a restart is not a new agent');
  await assert.rejects(client.restart('nope'), /serves wasm, native, not "nope"/);
});

test('region reads over TCP: a shipped module is a region; partial reads, out-of-range and unknown regions refused clearly', async () => {
  const bytes = Buffer.alloc(1 << 20);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + (i >> 9)) & 0xff;
  const name = await client.putModule('native', bytes);
  assert.ok((await client.readRegion(name, 0, bytes.length)).every((b, i) => b === bytes[i]));
  assert.deepEqual(Buffer.from(await client.readRegion(name, 4093, 10_000)), bytes.subarray(4093, 14_093));
  assert.equal((await client.readRegion(name, bytes.length, 0)).length, 0);
  await assert.rejects(client.readRegion(name, bytes.length - 10, 11), /refused a read of \[1048566, 1048577\).*outside region "sha256:[0-9a-f]+" of 1048576 bytes/);
  await assert.rejects(client.readRegion('no-such-region', 0, 1), /no region "no-such-region" is registered here/);
  await assert.rejects(client.readRegion(name, 0, MAX_REGION_READ + 1), /at most \d+ bytes per read/);
  await client.ping(); // refusals leave the link usable
});

test('an agent that dies during a region read: the reader gets an error naming the read, and is otherwise unaffected', async () => {
  const victim = await launchNode({ name: 'victim', kind: 'local' }, { variants: ['wasm'], memoryLimitMiB: 64, listen: 'tcp:127.0.0.1:0' });
  try {
    const c = await AgentClient.connect(victim.endpoint);
    const big = Buffer.alloc(48 << 20, 7);
    const name = await c.putModule('native', big);
    const reads = Array.from({ length: 4 }, () => c.readRegion(name, 0, big.length));
    victim.child.kill('SIGKILL');
    const outcomes = await Promise.allSettled(reads);
    const failed = outcomes.filter((o) => o.status === 'rejected');
    assert.ok(failed.length > 0, 'at least the last read was cut off');
    for (const f of failed) assert.match(String((f as PromiseRejectedResult).reason), /link to tcp:127\.0\.0\.1:\d+ ended during a read of \[0, 50331648\) of region "sha256:/);
    await assert.rejects(c.invoke({ variant: 'wasm', fn: 'noop', input: Buffer.alloc(0), ...warm }), /closed/);
    // this process and its other links go on
    const r = await client.invoke({ variant: 'wasm', fn: 'noop', input: Buffer.from('x'), ...warm });
    assert.equal(r.status, 'ok');
  } finally {
    await victim.stop();
  }
  assert.ok(await waitFor(() => victim.child.exitCode !== null || victim.child.signalCode !== null));
  // SIGKILL left its scratch folder: the next run's sweep removes it and says so
  const swept = cleanupStaleScratch(os.tmpdir(), pidAlive, { what: 'agent' });
  assert.ok(swept.some((l) => l.includes(`fxh-agent-${victim.child.pid}-`) && l.startsWith('removed stale')), swept.join('\n'));
});

test('a reader that disappears in the middle of region reads leaves the agent unaffected', async () => {
  const name = await client.putModule('native', Buffer.alloc(32 << 20, 3));
  const gone = await AgentClient.connect(node.endpoint);
  const reads = Array.from({ length: 4 }, () => gone.readRegion(name, 0, 32 << 20));
  gone.close();
  for (const o of await Promise.allSettled(reads)) assert.equal(o.status, 'rejected');
  // the agent goes on serving other links, reads included
  assert.equal((await client.readRegion(name, (32 << 20) - 4, 4)).length, 4);
  assert.equal((await client.invoke({ variant: 'wasm', fn: 'noop', input: Buffer.from('x'), ...warm })).status, 'ok');
  assert.equal((await client.hello()).pid, node.child.pid);
});

test('the agent stops when its stdin lifeline closes, and removes its scratch folder', async () => {
  const n = await launchNode({ name: 'lifeline', kind: 'local' }, { variants: ['wasm'], memoryLimitMiB: 64 });
  const sock = n.endpoint.slice('unix:'.length);
  assert.ok(fs.existsSync(sock));
  n.child.stdin!.end();
  assert.equal(await n.exited, 'code 0');
  assert.ok(!fs.existsSync(sock), 'its folder went with it');
  await n.stop();
});
